"""The sample model server answers with its version, like the reference lab's helloworld."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import threading
import urllib.request

import pytest

from tests.conftest import REPO
from tests.test_e2e import load_e2e


@pytest.fixture
def module():
    spec = importlib.util.spec_from_file_location("model_echo", REPO / "apps" / "model-echo" / "server.py")
    loaded = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(loaded)
    return loaded


@pytest.fixture
def server(monkeypatch, module):
    monkeypatch.setenv("TARGET", "v2")
    httpd = module.ThreadingHTTPServer(("127.0.0.1", 0), module.ModelHandler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()
    httpd.server_close()


def test_answers_with_its_version(server):
    with urllib.request.urlopen(server + "/", timeout=5) as response:
        assert response.read() == b"Hello v2!\n"
        assert response.headers["X-Model-Version"] == "v2"


def test_health_and_predict(server):
    with urllib.request.urlopen(server + "/healthz", timeout=5) as response:
        assert response.status == 200
    request = urllib.request.Request(server + "/predict", data=json.dumps({"x": [1, 2]}).encode(), method="POST")
    with urllib.request.urlopen(request, timeout=5) as response:
        assert json.loads(response.read()) == {"version": "v2", "input": {"x": [1, 2]}}


def test_rejects_non_json(server):
    request = urllib.request.Request(server + "/predict", data=b"not json", method="POST")
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=5)
    assert caught.value.code == 400


def test_query_strings_do_not_change_the_answer(server):
    """The end-to-end checks tag their requests with `?e2e=RUN`: they must reach the same handler."""
    with urllib.request.urlopen(server + "/?e2e=run-1", timeout=5) as response:
        assert response.read() == b"Hello v2!\n"
    with urllib.request.urlopen(server + "/healthz?probe=1", timeout=5) as response:
        assert response.read() == b"ok\n"
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(server + "/nothing?e2e=run-1", timeout=5)
    assert caught.value.code == 404


def test_each_request_is_logged_with_the_version_and_the_tagged_path(server, capfd):
    """scripts/e2e counts a shadow's mirrored requests from these lines (`kubectl logs`)."""
    e2e = load_e2e()
    for _ in range(3):
        urllib.request.urlopen(server + "/?e2e=run-7-echo-0", timeout=5).close()
    urllib.request.urlopen(server + "/?e2e=run-7-echo-1", timeout=5).close()
    logged = capfd.readouterr().err
    assert 'model-echo v2: "GET /?e2e=run-7-echo-0 HTTP/1.1" 200' in logged
    assert e2e.count_tagged(logged, "run-7-echo-0") == 3
    assert e2e.count_tagged(logged, "run-7-echo-1") == 1


def _statuses(url: str, count: int, method: str = "GET") -> list[int]:
    statuses = []
    for _ in range(count):
        data = b"{}" if method == "POST" else None
        request = urllib.request.Request(url, data=data, method=method)
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                statuses.append(response.status)
        except urllib.error.HTTPError as error:
            assert error.headers["X-Model-Version"] == "v2", "a failed answer still names its version"
            assert error.read() == b"failing on purpose (FAIL_PERCENT)\n"
            statuses.append(error.code)
    return statuses


def test_fail_percent_100_fails_every_model_request_but_never_the_health_probe(monkeypatch, server):
    monkeypatch.setenv("FAIL_PERCENT", "100")
    assert _statuses(server + "/", 5) == [500] * 5
    assert _statuses(server + "/predict", 3, "POST") == [500] * 3
    assert _statuses(server + "/rank", 2, "POST") == [500] * 2
    assert _statuses(server + "/healthz", 5) == [200] * 5
    monkeypatch.setenv("FAIL_PERCENT", "0")
    with urllib.request.urlopen(server + "/", timeout=5) as response:
        assert response.read() == b"Hello v2!\n"


def test_fail_percent_50_fails_exactly_every_second_request(monkeypatch, server):
    """Deterministic, so the e2e stack's failing version fails the same share on every run."""
    monkeypatch.setenv("FAIL_PERCENT", "50")
    assert _statuses(server + "/", 20) == [200, 500] * 10


@pytest.mark.parametrize("percent", [1, 30, 73])
def test_any_100_consecutive_requests_hold_exactly_fail_percent_failures(monkeypatch, server, percent):
    monkeypatch.setenv("FAIL_PERCENT", str(percent))
    statuses = _statuses(server + "/", 150)
    assert set(statuses) == {200, 500}
    for start in (0, 17, 50):
        assert statuses[start : start + 100].count(500) == percent


@pytest.mark.parametrize("value", ["abc", "101", "-1", "12.5"])
def test_a_bad_fail_percent_stops_the_server_naming_it(value):
    """The real command: exit 2 with the variable and what it takes, no traceback."""
    env = {"PATH": os.environ["PATH"], "FAIL_PERCENT": value, "PORT": "0"}
    result = subprocess.run(
        [sys.executable, str(REPO / "apps" / "model-echo" / "server.py")],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert f"FAIL_PERCENT={value!r}: expected an integer from 0 to 100" in result.stderr
    assert "Traceback" not in result.stderr
