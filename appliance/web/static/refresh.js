// Refresh the dashboard every 10 s without a full reload; the page works without this script.
(function () {
  "use strict";
  var target = document.getElementById("dashboard");
  if (!target || !window.fetch || !window.DOMParser) { return; }
  setInterval(function () {
    fetch(window.location.pathname, { credentials: "same-origin" })
      .then(function (response) { return response.ok ? response.text() : null; })
      .then(function (html) {
        if (!html) { return; }
        var fresh = new DOMParser().parseFromString(html, "text/html").getElementById("dashboard");
        if (fresh) { target.innerHTML = fresh.innerHTML; }
      })
      .catch(function () { /* the box may be rebooting: try again next time */ });
  }, 10000);
})();
