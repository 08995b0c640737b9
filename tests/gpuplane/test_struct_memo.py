"""gpuplane.engine.struct_memo: each distinct Struct converted once while the pack evaluates."""

from __future__ import annotations

from google.protobuf import json_format, struct_pb2
from pulumi_policy import policy as policy_module
from pulumi_policy.deserialize import deserialize_properties

from gpuplane.engine.struct_memo import memoized_struct_to_dict


def struct(data: dict) -> struct_pb2.Struct:
    s = struct_pb2.Struct()
    s.update(data)
    return s


def test_same_dict_as_the_real_conversion_once_per_distinct_struct_and_restored():
    a = {"tags": {"team": "ml", "owner": "x"}, "sizes": [1, 2.5, "three"], "flag": True, "none": None}
    b = {"tags": {"owner": "x", "team": "ml"}, "flag": True, "sizes": [1, 2.5, "three"], "none": None}  # same, other order
    c = {"tags": {"team": "other"}}
    with memoized_struct_to_dict() as memo:
        assert memo is not None and policy_module.json_format is memo
        first = policy_module.json_format.MessageToDict(struct(a))
        assert first == json_format.MessageToDict(struct(a))
        assert policy_module.json_format.MessageToDict(struct(b)) is first  # memo hit: same content
        assert policy_module.json_format.MessageToDict(struct(c)) == {"tags": {"team": "other"}}
        assert memo.hits == 1
        # options other than the defaults and other message types go to the real function
        value = struct_pb2.Value(string_value="s")
        assert policy_module.json_format.MessageToDict(value) == "s"
        assert policy_module.json_format.MessageToDict(struct(a), preserving_proto_field_name=True) is not first
        # what the servicer does with it never hands out the memo's own containers
        props = deserialize_properties(first)
        props["tags"]["team"] = "changed"
        props["sizes"].append(4)
        assert policy_module.json_format.MessageToDict(struct(a)) == json_format.MessageToDict(struct(a))
    assert policy_module.json_format is json_format
