"""The turnout experiment agent: I/O around turnout.experiments for one endpoint (CONTRACT §4).

It serves the feedback API, keeps every reward in a durable ledger before answering, reads the
requests each version served from the mesh's metrics in Prometheus, and, while it holds its Lease,
turns the counts into weights with `turnout.experiments.bandit.allocate` and writes them into the
endpoint's VirtualService every `interval`. See apps/experiment-agent/README.md.
"""

__version__ = "0.1.0"
