"""python -m turnout_agent --settings /etc/turnout-agent/settings.json [--replica NAME]"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import sys
from pathlib import Path

from turnout_agent.agent import Agent
from turnout_agent.kube import Kube, api_client
from turnout_agent.ledger import Ledger
from turnout_agent.mesh import Prometheus
from turnout_agent.server import make_server, serve_in_background
from turnout_agent.settings import SettingsError, load


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="turnout-agent", description=__doc__)
    parser.add_argument("--settings", type=Path, default=Path("/etc/turnout-agent/settings.json"))
    parser.add_argument("--replica", default=os.environ.get("POD_NAME") or socket.gethostname())
    parser.add_argument("--port", type=int, help="listen here instead of the settings' port")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    try:
        settings = load(args.settings, replica=args.replica)
    except SettingsError as error:
        print(f"turnout-agent: {error}", file=sys.stderr)
        return 2
    ledger = Ledger(settings.ledger_path, dedupe_s=settings.dedupe_s)
    agent = Agent(
        settings,
        Kube(api_client(settings.kubernetes_host), settings.namespace),
        ledger,
        Prometheus(settings.prometheus_url),
    )
    server = make_server(agent, port=args.port)
    serve_in_background(server)
    logging.getLogger("turnout_agent").info(
        "turnout-agent %s for %s listening on :%d", settings.replica, settings.endpoint, server.server_port
    )
    signal.signal(signal.SIGTERM, lambda *_: agent.stop())
    try:
        agent.run()
    finally:
        server.shutdown()
        ledger.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
