"""The sample model server answers with its version, like the reference lab's helloworld."""

from __future__ import annotations

import importlib.util
import json
import threading
import urllib.request

import pytest

from tests.conftest import REPO


@pytest.fixture
def server(monkeypatch):
    spec = importlib.util.spec_from_file_location("model_echo", REPO / "apps" / "model-echo" / "server.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
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
