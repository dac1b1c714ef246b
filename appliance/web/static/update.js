// Firmware upload on the Operations page: send the bundle as the raw body (so the box can
// stream it to its data partition) with upload progress, then poll the install's progress
// until it has succeeded or failed.
(function () {
  "use strict";
  var form = document.getElementById("firmware-form");
  if (!form || !window.XMLHttpRequest || !window.fetch) { return; }
  var input = document.getElementById("firmware-file");
  var uploadBar = document.getElementById("firmware-upload-progress");
  var installBar = document.getElementById("firmware-install-progress");
  var message = document.getElementById("firmware-message");
  var button = form.querySelector("button[type=submit]");
  var token = form.querySelector("input[name=csrf_token]").value;
  var maxBytes = parseInt(form.getAttribute("data-max-bytes"), 10);

  function say(text, failed) {
    message.textContent = text;
    message.className = failed ? "error" : "";
  }

  function detail(xhr) {
    try { return JSON.parse(xhr.responseText).detail; } catch (e) { return "HTTP " + xhr.status; }
  }

  function poll(since, waited) {
    waited = waited || 0;
    fetch("/api/v1/update/status", { credentials: "same-origin" })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (answer) {
        var status = answer && answer.status;
        if (status && status.started && status.started >= since) {
          installBar.value = status.percent;
          if (status.state === "succeeded") {
            say("Installed: " + status.message + ". Reboot the box (Reboot on this page) to start it.", false);
            button.disabled = false;
            return;
          }
          if (status.state === "failed") {
            say("Not installed: " + status.message, true);
            button.disabled = false;
            return;
          }
          say("Installing: " + status.percent + "% " + status.message, false);
        } else if (waited < 60) {
          say("Upload complete; waiting for the installer to start…", false);
        } else {
          say("The installer has not started after a minute: check " +
              "`systemctl status edge-update-request.path` on the box.", true);
        }
        setTimeout(function () { poll(since, waited + 1); }, 1000);
      })
      .catch(function () { setTimeout(function () { poll(since, waited + 2); }, 2000); });
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var file = input.files && input.files[0];
    if (!file) { say("Choose a bundle (.raucb) first.", true); return; }
    if (!/\.raucb$/i.test(file.name)) { say(file.name + " is not a firmware bundle: choose a .raucb file.", true); return; }
    if (file.size === 0) { say(file.name + " is empty: copy the bundle again.", true); return; }
    if (maxBytes && file.size > maxBytes) { say(file.name + " is bigger than a bundle may be.", true); return; }
    var xhr = new XMLHttpRequest();
    xhr.open("POST", "/api/v1/update/upload?filename=" + encodeURIComponent(file.name));
    xhr.setRequestHeader("X-CSRF-Token", token);
    xhr.setRequestHeader("Content-Type", "application/octet-stream");
    xhr.upload.onprogress = function (e) {
      if (e.lengthComputable) {
        uploadBar.value = Math.floor(100 * e.loaded / e.total);
        say("Uploading " + file.name + ": " + uploadBar.value + "%", false);
      }
    };
    xhr.onload = function () {
      if (xhr.status === 202) {
        uploadBar.value = 100;
        installBar.value = 0;
        poll(JSON.parse(xhr.responseText).requested);
      } else {
        say("Upload refused: " + detail(xhr), true);
        button.disabled = false;
      }
    };
    xhr.onerror = function () { say("The upload was interrupted: check the connection and try again.", true); button.disabled = false; };
    button.disabled = true;
    uploadBar.value = 0;
    xhr.send(file);
  });
})();
