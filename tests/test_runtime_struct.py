"""turnout/offline/runtime.py reads what a program registers from the SDK's wire format (protobuf Structs)."""

from __future__ import annotations

import pytest
from google.protobuf import json_format, struct_pb2

from turnout.offline import runtime, sdk


def test_registered_properties_are_read_as_json_format_reads_them():
    """The runtime reads a registration's Struct directly (runtime._struct): the same dict as protobuf's own
    `json_format.MessageToDict`, for every kind of value the wire format carries, and the same refusal of a
    number JSON cannot hold."""
    message = struct_pb2.Struct()
    message.update(
        {
            "name": "fraud-score",
            "replicas": 3,
            "ratio": 0.25,
            "enabled": True,
            "nothing": None,
            "empty": {},
            "none": [],
            "labels": {"app": "fraud", "tier": {"nested": [1, "two", None, False, {"deep": 1.5}]}},
            "secret": {sdk.SIG_KEY: sdk.SECRET_SIG, "value": "hunter2"},
            "unknown": sdk.UNKNOWN,
        }
    )
    assert runtime._struct(message) == json_format.MessageToDict(message)
    assert runtime._struct(None) == {}
    message.update({"infinite": float("inf")})
    with pytest.raises(ValueError, match="Value.number_value"):
        json_format.MessageToDict(message)
    with pytest.raises(ValueError, match="Value.number_value"):
        runtime._struct(message)
