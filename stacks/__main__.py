"""The turnout Pulumi program: load the typed stack config, check it, compose the stack's kind.

A cell (turnout_cell.py) has clusters, the serving platform and model endpoints; a global stack
(turnout_global.py) only routes users over the gateways of its colour cells.
"""

import pulumi
from turnout_cell import compose_cell
from turnout_global import compose_global

from components.support import check_buildable
from turnout.config import NAMESPACE, TOP_LEVEL_KEYS, load_stack_config

config = pulumi.Config(NAMESPACE)
stack = load_stack_config({key: config.get(key) for key in TOP_LEVEL_KEYS})
check_buildable(stack, pulumi.get_stack())  # refuse what this version cannot build before anything is created
{"cell": compose_cell, "global": compose_global}[stack.kind](stack)
