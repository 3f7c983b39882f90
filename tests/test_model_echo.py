"""The sample model server answers with its version, like the reference lab's helloworld."""

from __future__ import annotations

import importlib.util
import json
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


def test_fail_percent_makes_a_share_of_model_requests_fail(monkeypatch, server):
    """FAIL_PERCENT=100: every model request answers 503; the health probe still answers."""
    monkeypatch.setenv("FAIL_PERCENT", "100")
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(server + "/", timeout=5)
    assert caught.value.code == 503
    with urllib.request.urlopen(server + "/healthz", timeout=5) as response:
        assert response.status == 200
    monkeypatch.setenv("FAIL_PERCENT", "0")
    with urllib.request.urlopen(server + "/", timeout=5) as response:
        assert response.read() == b"Hello v2!\n"
