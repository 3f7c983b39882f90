"""The offline planner behind `turnout plan`: the real Pulumi program on the SDK's mock runtime."""
