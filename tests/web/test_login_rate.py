"""The login rate limit: attempts are counted atomically (concurrent guesses are checked no
more often than the configured number), X-Forwarded-For names a client only when the request
comes from a `[web] trusted_proxies` address, and an overall cap holds for every address."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx

from appliance.web.security import forwarded_client
from appliance.web.sessions import LoginLimiter
from tests.conftest import free_port
from tests.web.conftest import PASSWORD, read_setup_code

ATTEMPTS = 5


def start(appliance, tmp_path, **web):
    port = free_port()
    proc, _, _ = appliance({"web": {"port": port, "login_attempts": ATTEMPTS, **web}})
    base = f"http://127.0.0.1:{port}"
    with httpx.Client(base_url=base, timeout=10) as client:
        answer = client.post("/api/v1/setup", json={
            "password": PASSWORD, "setup_code": read_setup_code(tmp_path / "data")})
        assert answer.status_code == 200, answer.text
    return proc, base


def checked(proc, client: str = "") -> int:
    """Password checks that failed, as the appliance logged them (one line each)."""
    return proc.log().count(f"failed API login from {client}")


def guess(base: str, password: str = "wrong guess!", forwarded: str | None = None) -> int:
    headers = {"X-Forwarded-For": forwarded} if forwarded else {}
    return httpx.post(base + "/api/v1/login", json={"password": password}, headers=headers,
                      timeout=30).status_code


def test_concurrent_guesses_are_checked_at_most_the_allowed_number_of_times(appliance, tmp_path):
    proc, base = start(appliance, tmp_path)
    with ThreadPoolExecutor(max_workers=50) as pool:
        answers = list(pool.map(lambda _: guess(base), range(100)))
    assert set(answers) <= {401, 429}, answers
    assert answers.count(401) == checked(proc) <= ATTEMPTS
    assert guess(base, PASSWORD) == 429  # locked out, even with the right password now


def test_forwarded_for_is_ignored_without_a_trusted_proxy(appliance, tmp_path):
    proc, base = start(appliance, tmp_path)
    answers = [guess(base, forwarded=f"198.51.100.{n}") for n in range(1, 21)]
    assert answers.count(401) == ATTEMPTS and answers[ATTEMPTS:] == [429] * (20 - ATTEMPTS)
    assert checked(proc) == checked(proc, "127.0.0.1") == ATTEMPTS
    assert "198.51.100." not in proc.log()


def test_a_trusted_proxy_names_each_client(appliance, tmp_path):
    proc, base = start(appliance, tmp_path, trusted_proxies=["127.0.0.0/8"])
    first = [guess(base, forwarded="198.51.100.7") for _ in range(ATTEMPTS + 1)]
    assert first == [401] * ATTEMPTS + [429]
    # Another client behind the same proxy is not locked out by the first one's guesses.
    assert guess(base, forwarded="203.0.113.9, 127.0.0.1") == 401
    assert checked(proc, "198.51.100.7") == ATTEMPTS and checked(proc, "203.0.113.9") == 1
    with httpx.Client(base_url=base, timeout=10) as client:
        answer = client.post("/api/v1/login", json={"password": PASSWORD},
                             headers={"X-Forwarded-For": "203.0.113.10"})
        assert answer.status_code == 200


def test_forwarded_for_is_read_from_the_right_through_trusted_hops_only():
    trusted = ["10.0.0.0/24", "127.0.0.1"]
    assert forwarded_client("127.0.0.1", ["198.51.100.1"], []) == "127.0.0.1"
    assert forwarded_client("192.0.2.5", ["198.51.100.1"], trusted) == "192.0.2.5"
    assert forwarded_client("127.0.0.1", ["203.0.113.1, 198.51.100.1"], trusted) \
        == "198.51.100.1"  # the left entry was written by the client itself: not believed
    assert forwarded_client("127.0.0.1", ["198.51.100.1, 10.0.0.3"], trusted) == "198.51.100.1"
    assert forwarded_client("127.0.0.1", ["bogus, 10.0.0.3"], trusted) == "10.0.0.3"
    assert forwarded_client("127.0.0.1", [], trusted) == "127.0.0.1"


def test_reserved_attempts_count_before_they_finish_and_a_global_cap_holds():
    now = [0.0]
    limiter = LoginLimiter(max_failures=3, max_in_flight=100, max_global_failures=10,
                           clock=lambda: now[0])
    assert [limiter.begin("a") for _ in range(5)] == [0, 0, 0, 1.0, 1.0]
    for _ in range(3):
        limiter.finish("a", ok=False)
    assert limiter.begin("a") >= 59  # locked out
    for n in range(7):  # ten failures from all addresses: everybody waits
        assert limiter.begin(f"c{n}") == 0
        limiter.finish(f"c{n}", ok=False)
    assert limiter.begin("somebody else") >= 59
    now[0] += 61
    assert limiter.begin("somebody else") == 0


def test_at_most_the_in_flight_number_of_checks_run_at_once():
    limiter = LoginLimiter(max_failures=5, max_in_flight=2)
    assert [limiter.begin(c) for c in ("a", "b", "c")] == [0, 0, 1.0]
    limiter.finish("a", ok=True)
    assert limiter.begin("c") == 0
