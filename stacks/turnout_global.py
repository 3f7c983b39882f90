"""A global stack: health-checked weighted DNS over the gateways of its colour cells (blue/green
stacks), read through StackReferences. Switching the live colour is a one-word change in its file."""

import pulumi

from components.globaltraffic import exported
from components.globaltraffic.colours import colour_routing
from turnout import dr
from turnout.config import StackConfig


def compose_global(stack: StackConfig) -> None:
    routing, probes = colour_routing(pulumi.get_stack(), stack.platform, stack.global_traffic)
    pulumi.export("kind", stack.kind)
    pulumi.export("tier", stack.tier)
    pulumi.export("liveColour", stack.global_traffic.live)
    pulumi.export("weights", stack.global_traffic.colour_weights())
    pulumi.export("cells", dict(stack.global_traffic.cells))
    pulumi.export("globalTraffic", exported(routing))
    document = dr.assess(None, stack.platform).to_json()
    document["reasons"] = [
        "a global stack holds no data and serves nothing itself: each cell carries its own DR verdict, "
        "and these records stop answering with a cell whose health checks fail",
        probes,  # what the checks probe: each cell's health route, or why its gateway's status port
    ]
    pulumi.export("dr", document)
