"""turnout's acceptance runner: the requests a new model version must answer as expected before users reach it.

    runner.py check --tests tests.json --url http://fraud-score-v2-acceptance.fraud-score
        run every test once against each --url (repeatable); exit 0 when all pass, 1 otherwise, with the reason
        on standard output and in /dev/termination-log (where Kubernetes, and `pulumi up`, read it);
        --retry-unavailable also waits out 502, 503 and 504 answers (a Knative revision whose Service the mesh
        does not route yet), then judges the last one
    runner.py serve --tests tests.json --url http://fraud-score-canary.fraud-score --port 8080
        answer Flagger's pre-rollout webhook (any POST): 200 when every test passes, 412 with the reason otherwise

tests.json is `endpoints.NAME.tests` as turnout validated it: [{"path", "method", "body", "expect": {"status",
"jsonPath", "equals" | "within"}}]. jsonPath is `$` followed by `.name`, `['name']` or `[index]` steps. Python's
standard library only: the image is a stock Python one, and this file is mounted from a ConfigMap.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import sys
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

STEP = re.compile(r"\.([A-Za-z_][A-Za-z0-9_-]*)|\[(\d+)\]|\['([^'\]]+)'\]")
TERMINATION_LOG = Path("/dev/termination-log")
MISSING = object()


def json_path(document: object, path: str) -> object:
    """The value at `path` in `document`, or MISSING."""
    if not path.startswith("$"):
        raise ValueError(f"{path}: a JSONPath starts with $")
    position, value = 1, document
    while position < len(path):
        step = STEP.match(path, position)
        if step is None:
            raise ValueError(f"{path}: cannot read the step at {path[position:]!r}")
        name, index, quoted = step.groups()
        if index is not None:
            if not isinstance(value, list) or int(index) >= len(value):
                return MISSING
            value = value[int(index)]
        else:
            key = name if name is not None else quoted
            if not isinstance(value, dict) or key not in value:
                return MISSING
            value = value[key]
        position = step.end()
    return value


def judge(test: dict, status: int, body: bytes) -> str | None:
    """Why the answer fails the test, or None when it passes."""
    expect = test.get("expect") or {}
    wanted = expect.get("status", 200)
    if status != wanted:
        return f"expected status {wanted}, got {status}"
    path = expect.get("jsonPath")
    if path is None:
        return None
    try:
        document = json.loads(body or b"null")
    except ValueError:
        return f"expected JSON with {path}, got {body[:80]!r}"
    found = json_path(document, path)
    if found is MISSING:
        return f"{path} is missing from the answer"
    if "equals" in expect and expect["equals"] is not None:
        if found != expect["equals"]:
            return f"{path} is {json.dumps(found)}, expected {json.dumps(expect['equals'])}"
        return None
    low, high = expect["within"]
    if isinstance(found, bool) or not isinstance(found, (int, float)):
        return f"{path} is {json.dumps(found)}, expected a number within [{low}, {high}]"
    if not low <= found <= high:
        return f"{path} is {found}, expected within [{low}, {high}]"
    return None


def call(base_url: str, test: dict, timeout: float) -> tuple[int, bytes]:
    body = test.get("body")
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(base_url.rstrip("/") + test["path"], data=data, method=test.get("method", "GET"))
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


UNAVAILABLE = (502, 503, 504)
"""What a sidecar answers for a Service it has no route or no endpoint for yet, and the activator while it fails."""


def run(
    tests: list[dict], base_url: str, *, timeout: float = 10.0, wait: float = 0.0, retry_unavailable: bool = False
) -> list[str]:
    """Every test against base_url; the failures, each naming its test. `wait`: seconds to retry a version that
    does not answer at all yet (its pods starting), before the tests count; `retry_unavailable`: also retry it
    while it answers 502, 503 or 504, and judge the last answer once `wait` is over."""
    deadline = time.monotonic() + wait
    failures = []
    for index, test in enumerate(tests):
        name = f"test {index + 1} ({test.get('method', 'GET')} {test['path']}) on {base_url}"
        while True:
            try:
                status, body = call(base_url, test, timeout)
                if retry_unavailable and status in UNAVAILABLE and time.monotonic() < deadline:
                    time.sleep(2)
                    continue
                break
            except OSError as error:
                if time.monotonic() >= deadline:
                    status, body = None, str(error).encode()
                    break
                time.sleep(2)
        reason = f"no answer: {body.decode(errors='replace')}" if status is None else judge(test, status, body)
        if reason:
            failures.append(f"{name}: {reason}")
    return failures


SIDECAR_QUIT = "http://127.0.0.1:15020/quitquitquit"


def quit_sidecar() -> None:
    """Ask the Istio sidecar to exit, so a Job's pod completes where the sidecar is not a native one."""
    with contextlib.suppress(OSError):
        urllib.request.urlopen(urllib.request.Request(SIDECAR_QUIT, data=b"", method="POST"), timeout=5).close()


def check(
    tests: list[dict], urls: list[str], wait: float, *, stop_sidecar: bool = False, retry_unavailable: bool = False
) -> int:
    failures = [failure for url in urls for failure in run(tests, url, wait=wait, retry_unavailable=retry_unavailable)]
    total = len(tests) * len(urls)
    if failures:
        report = f"acceptance tests failed ({len(failures)} of {total}): " + "; ".join(failures)
    else:
        report = f"acceptance tests passed ({total} of {total})"
    print(report, flush=True)
    if failures and TERMINATION_LOG.parent.exists():
        with contextlib.suppress(OSError):
            TERMINATION_LOG.write_text(report[:4000])
    if stop_sidecar:
        quit_sidecar()
    return 1 if failures else 0


def serve(tests: list[dict], url: str, port: int) -> ThreadingHTTPServer:
    class Webhook(BaseHTTPRequestHandler):
        def _answer(self, status: int, text: str) -> None:
            body = text.encode() + b"\n"
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            self._answer(200 if self.path == "/healthz" else 404, "ok" if self.path == "/healthz" else "not found")

        def do_POST(self) -> None:  # noqa: N802
            self.rfile.read(int(self.headers.get("Content-Length") or 0))  # Flagger's payload: nothing to choose
            failures = run(tests, url)
            if failures:
                self._answer(412, f"acceptance tests failed ({len(failures)} of {len(tests)}): " + "; ".join(failures))
            else:
                self._answer(200, f"acceptance tests passed ({len(tests)} of {len(tests)})")

        def log_message(self, format: str, *args) -> None:  # noqa: A002
            sys.stderr.write(f"acceptance-runner: {format % args}\n")

    return ThreadingHTTPServer(("0.0.0.0", port), Webhook)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="runner.py", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    for name in ("check", "serve"):
        command = commands.add_parser(name)
        command.add_argument("--tests", type=Path, required=True)
        command.add_argument("--url", action="append", required=True)
    commands.choices["check"].add_argument("--wait", type=float, default=300.0, help="seconds to wait for an answer")
    commands.choices["check"].add_argument(
        "--quit-sidecar", action="store_true", help="stop the Istio sidecar when done"
    )
    commands.choices["check"].add_argument(
        "--retry-unavailable", action="store_true", help="wait out 502, 503 and 504 answers too, within --wait"
    )
    commands.choices["serve"].add_argument("--port", type=int, default=8080)
    args = parser.parse_args(argv)
    tests = json.loads(args.tests.read_text())
    if args.command == "check":
        return check(
            tests, args.url, args.wait, stop_sidecar=args.quit_sidecar, retry_unavailable=args.retry_unavailable
        )
    server = serve(tests, args.url[0], args.port)
    print(f"acceptance-runner: serving Flagger's webhook on :{server.server_port}", file=sys.stderr, flush=True)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
