"""turnout: ship machine-learning models safely with Pulumi.

`turnout` itself is the pure domain (typed stack configuration, strategies turned into traffic
plans, disaster-recovery arithmetic) and imports no Pulumi provider. `turnout.offline` is the
engine behind `turnout plan`; it uses the Pulumi SDK's mock runtime, never a provider package.
"""

__version__ = "0.1.0"
