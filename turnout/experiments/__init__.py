"""Experiment algorithms (CONTRACT §4): pure functions the experiment agent, the tests and anyone's own
simulations use. `bandit` allocates traffic from rewards; no Pulumi, no I/O."""
