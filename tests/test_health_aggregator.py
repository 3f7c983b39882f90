"""The health aggregator (apps/health-aggregator/aggregator.py), run for real against a local TLS "gateway".

The gateway stand-in is a real HTTPS server with a self-signed certificate that records the SNI of each handshake and
answers by Host header, as the Istio gateway's VirtualServices do: one model answers 200, one 503, one host has no
route. A second stand-in speaks plain HTTP on its "TLS" port, like a gateway without a certificate for the host."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import shutil
import socket
import ssl
import subprocess
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl makes the test certificate")


@pytest.fixture(scope="module")
def aggregator():
    spec = importlib.util.spec_from_file_location("aggregator", REPO / "apps" / "health-aggregator" / "aggregator.py")
    loaded = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(loaded)
    return loaded


ANSWERS = {"ranker.models.test": 200, "scorer.models.test": 503}


class GatewayHandler(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802
        host = self.headers.get("Host", "")
        status = ANSWERS.get(host, 404)
        self.server.seen.append((host, self.path))
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    directory = tmp_path_factory.mktemp("tls")
    key, cert = directory / "key.pem", directory / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=*.models.test"]
        + ["-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )
    return cert, key


@pytest.fixture
def gateway(certificate):
    """A TLS server on 127.0.0.1 that records each handshake's SNI and answers by Host."""
    cert, key = certificate
    server = ThreadingHTTPServer(("127.0.0.1", 0), GatewayHandler)
    server.seen, server.sni = [], []
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    context.sni_callback = lambda sock, name, ctx: server.sni.append(name)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def plain_gateway():
    """A "gateway" with no certificate: plain HTTP where TLS is expected, so every handshake fails."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), GatewayHandler)
    server.seen = []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def config(port: int, *hosts: str, period: float = 0.2, timeout: float = 2) -> dict:
    return {
        "gateway": "127.0.0.1",
        "port": port,
        "period": period,
        "timeout": timeout,
        "endpoints": [{"name": host.split(".")[0], "host": host, "path": "/v1/health"} for host in hosts],
    }


def test_ready_while_every_model_answers_with_sni_and_host(aggregator, gateway):
    aggregate = aggregator.Aggregate(config(gateway.server_port, "ranker.models.test"))
    aggregate.refresh()
    status, body = aggregate.answer()
    assert status == 200, body
    assert body["endpoints"]["ranker"]["status"] == 200
    assert gateway.sni == ["ranker.models.test"]  # the Gateway picks its server by SNI
    assert gateway.seen == [("ranker.models.test", "/v1/health")]


def test_one_model_down_or_unrouted_takes_the_region_out(aggregator, gateway):
    hosts = ("ranker.models.test", "scorer.models.test", "absent.models.test")
    aggregate = aggregator.Aggregate(config(gateway.server_port, *hosts))
    aggregate.refresh()
    status, body = aggregate.answer()
    assert status == 503
    assert body["reason"] == "not answering: absent, scorer"
    assert {name: e["status"] for name, e in body["endpoints"].items()} == {"ranker": 200, "scorer": 503, "absent": 404}
    assert sorted(gateway.sni) == sorted(hosts)


def test_no_certificate_means_not_ready(aggregator, plain_gateway):
    aggregate = aggregator.Aggregate(config(plain_gateway.server_port, "ranker.models.test"))
    aggregate.refresh()
    status, body = aggregate.answer()
    assert status == 503
    assert body["endpoints"]["ranker"]["status"] is None
    assert "SSL" in body["endpoints"]["ranker"]["error"]


def test_nothing_listening_means_not_ready(aggregator):
    with socket_port() as port:
        pass  # closed again: nothing listens there
    aggregate = aggregator.Aggregate(config(port, "ranker.models.test", timeout=1))
    aggregate.refresh()
    assert aggregate.answer()[0] == 503


def test_stale_or_missing_rounds_are_not_ready(aggregator, gateway):
    aggregate = aggregator.Aggregate(config(gateway.server_port, "ranker.models.test", period=5, timeout=3))
    assert aggregate.answer() == (503, {"ready": False, "reason": "no probe round has finished yet", "endpoints": {}})
    aggregate.refresh()
    assert aggregate.answer()[0] == 200
    status, body = aggregate.answer(now=time.monotonic() + aggregate.max_age + 1)
    assert status == 503 and body["reason"].startswith("last probe round is")
    assert aggregator.Aggregate(config(gateway.server_port)).answer()[0] == 503  # a region without models


def test_server_answers_ready_and_healthz_over_http(aggregator, gateway):
    with socket_port() as port:
        pass
    cfg = {**config(gateway.server_port, "ranker.models.test"), "listen": port, "bind": "127.0.0.1"}
    server, stop = aggregator.serve(cfg)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 10
        while True:
            try:
                with urllib.request.urlopen(base + "/ready", timeout=5) as response:
                    assert json.load(response)["ready"] is True
                    break
            except urllib.error.HTTPError as error:
                assert error.code == 503
                assert time.monotonic() < deadline, "the first probe round never finished"
                time.sleep(0.1)
        with urllib.request.urlopen(base + "/healthz", timeout=5) as response:
            assert response.status == 200
        ANSWERS["ranker.models.test"] = 500  # the model stops answering: /ready follows within a round
        try:
            deadline = time.monotonic() + 10
            while True:
                try:
                    urllib.request.urlopen(base + "/ready", timeout=5).close()
                except urllib.error.HTTPError as error:
                    assert error.code == 503
                    assert json.load(error)["reason"] == "not answering: ranker"
                    break
                assert time.monotonic() < deadline, "/ready still 200 after the model stopped answering"
                time.sleep(0.1)
        finally:
            ANSWERS["ranker.models.test"] = 200
        with pytest.raises(urllib.error.HTTPError) as missing:
            urllib.request.urlopen(base + "/other", timeout=5)
        assert missing.value.code == 404
    finally:
        stop.set()
        server.shutdown()
        server.server_close()


@contextlib.contextmanager
def socket_port():
    """A free local port (bound, then released on exit)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]
