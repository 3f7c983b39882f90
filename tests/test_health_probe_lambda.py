"""The health probe Lambda (components/dr/lambdas/health_probe.py) against a real local TLS server that, like the
Gateway, picks its certificate by SNI, with CloudWatch stubbed by botocore's Stubber: it sends the health host as SNI
and Host, publishes 1 only for a 2xx answer, 0 for a 503, a missing certificate, a refused or a silent connection, and
a failed publish fails the invocation."""

from __future__ import annotations

import datetime
import http.server
import socket
import ssl
import threading
import time
from pathlib import Path

import boto3
import pytest
from botocore.stub import Stubber
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from components.dr.lambdas import health_probe

DOMAIN = "models.example.com"
HOST = f"turnout-health.{DOMAIN}"


def certificate(tmp_path: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"*.{DOMAIN}")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(f"*.{DOMAIN}")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


class Gateway:
    """A TLS server serving `*.<domain>` only to clients that name a host under it (SNI), answering `status`."""

    def __init__(self, tmp_path: Path, status: int = 200) -> None:
        self.seen: list[dict] = []
        self.status = status
        cert, key = certificate(tmp_path)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)

        def choose(sock, server_name, _context):
            self.seen.append({"sni": server_name})
            if not (server_name or "").endswith(f".{DOMAIN}"):
                return ssl.ALERT_DESCRIPTION_UNRECOGNIZED_NAME  # no server (and no certificate) for that name
            return None

        context.sni_callback = choose
        gateway = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's name)
                gateway.seen[-1].update(path=self.path, host=self.headers.get("Host"))
                body = b'{"ready": true}' if gateway.status == 200 else b'{"ready": false}'
                self.send_response(gateway.status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def gateway(tmp_path):
    server = Gateway(tmp_path)
    yield server
    server.close()


def environment(monkeypatch, port: int, host: str = HOST, timeout: str = "2") -> None:
    for key, value in {
        "PROBE_ADDRESS": "127.0.0.1",
        "PROBE_HOST": host,
        "PROBE_PORT": str(port),
        "PROBE_PATH": "/ready",
        "PROBE_TIMEOUT": timeout,
        "METRIC_NAMESPACE": "Turnout/HealthRoute",
        "METRIC_NAME": "HealthRouteUp",
        "CLUSTER": "prod-us-east-1",
    }.items():
        monkeypatch.setenv(key, value)


def run(expected_value: float | None, error: str | None = None):
    """Invoke the handler with CloudWatch stubbed to expect one PutMetricData of `expected_value`."""
    client = boto3.client("cloudwatch", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    with Stubber(client) as stubber:
        params = {
            "Namespace": "Turnout/HealthRoute",
            "MetricData": [
                {
                    "MetricName": "HealthRouteUp",
                    "Dimensions": [{"Name": "Cluster", "Value": "prod-us-east-1"}],
                    "Value": expected_value,
                    "Unit": "Count",
                    "StorageResolution": 60,
                }
            ],
        }
        if error:
            stubber.add_client_error("put_metric_data", service_error_code=error, expected_params=params)
        else:
            stubber.add_response("put_metric_data", {}, params)
        result = health_probe.handler({}, None, client=client)
        stubber.assert_no_pending_responses()
    return result


def test_a_ready_route_publishes_1_and_the_request_carries_the_health_host_as_sni_and_host(gateway, monkeypatch):
    environment(monkeypatch, gateway.port)
    result = run(1.0)
    assert result == {"cluster": "prod-us-east-1", "healthy": True, "outcome": "HTTP 200"}
    assert gateway.seen == [{"sni": HOST, "path": "/ready", "host": HOST}]


def test_a_route_whose_models_do_not_answer_publishes_0(tmp_path, monkeypatch):
    server = Gateway(tmp_path, status=503)
    try:
        environment(monkeypatch, server.port)
        assert run(0.0)["outcome"] == "HTTP 503"
    finally:
        server.close()


def test_a_host_the_gateway_has_no_certificate_for_fails_the_handshake_and_publishes_0(gateway, monkeypatch):
    environment(monkeypatch, gateway.port, host="turnout-health.elsewhere.example")
    result = run(0.0)
    assert not result["healthy"] and "SSL" in result["outcome"]
    assert gateway.seen == [{"sni": "turnout-health.elsewhere.example"}]  # no request was sent


def test_a_refused_connection_publishes_0(monkeypatch):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens once closed
    environment(monkeypatch, port)
    assert "ConnectionRefused" in run(0.0)["outcome"]


def test_a_silent_gateway_publishes_0_within_the_timeout(monkeypatch):
    with socket.socket() as listener:  # accepts the connection, never answers the ClientHello
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        environment(monkeypatch, listener.getsockname()[1], timeout="0.5")
        started = time.monotonic()
        result = run(0.0)
    assert not result["healthy"] and time.monotonic() - started < 3


def test_a_failed_publish_fails_the_invocation(gateway, monkeypatch):
    environment(monkeypatch, gateway.port)
    with pytest.raises(Exception, match="AccessDenied"):
        run(1.0, error="AccessDenied")


def test_a_missing_or_malformed_setting_is_named(monkeypatch):
    environment(monkeypatch, 443)
    monkeypatch.delenv("PROBE_HOST")
    with pytest.raises(health_probe.ProbeConfigError, match="PROBE_HOST"):
        health_probe.handler({}, None, client=object())
    environment(monkeypatch, 443, timeout="soon")
    with pytest.raises(health_probe.ProbeConfigError, match="PROBE_TIMEOUT"):
        health_probe.handler({}, None, client=object())


def test_the_package_is_one_file_importing_only_boto3_and_the_standard_library():
    source = Path(health_probe.__file__).read_text()
    imports = {line.split()[1].split(".")[0] for line in source.splitlines() if line.startswith(("import ", "from "))}
    assert imports <= {"__future__", "http", "os", "socket", "ssl", "typing", "boto3"}
