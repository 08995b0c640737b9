"""Table tests of the pure OIP v2 parsing and validation (workloads/serving/protocol.py)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from workloads.serving.protocol import (
    ModelSpec,
    ProtocolError,
    history_from_source,
    infer_response,
    model_metadata,
    parse_infer_request,
)

SPEC = ModelSpec(name="recommender", num_items=50, block_size=8, valid_items=range(1, 51), num_valid_items=50)
CATALOG_SPEC = ModelSpec(name="recommender", num_items=50, block_size=8, valid_items=frozenset({2, 4, 6}),
                         num_valid_items=3)
MAX_BATCH = 4


def item_ids(data: Any, shape: Any = None, datatype: str = "INT64") -> dict[str, Any]:
    if shape is None:
        shape = [len(data), len(data[0])]
    return {"name": "item_ids", "datatype": datatype, "shape": shape, "data": data}


def k_input(value: Any, shape: Any = (1,), datatype: str = "INT64") -> dict[str, Any]:
    return {"name": "k", "datatype": datatype, "shape": list(shape), "data": value if isinstance(value, list) else [value]}


def user_input(data: list[Any], datatype: str = "BYTES") -> dict[str, Any]:
    return {"name": "user_id", "datatype": datatype, "shape": [len(data)], "data": data}


def body(*inputs: dict[str, Any], **extra: Any) -> bytes:
    return json.dumps({"inputs": list(inputs), **extra}).encode()


BAD_REQUESTS: list[tuple[str, bytes, str]] = [
    ("empty body", b"", "request body is empty"),
    ("invalid json", b"{not json", "not valid JSON"),
    ("invalid utf-8", b"\xff\xfe{", "not valid JSON"),
    ("json array", b"[1, 2]", "must be a JSON object, got an array"),
    ("no inputs", b"{}", "missing 'inputs'"),
    ("empty inputs", body(), "'inputs' must be a non-empty array"),
    ("inputs not a list", json.dumps({"inputs": {"name": "item_ids"}}).encode(), "'inputs' must be a non-empty array"),
    ("input not an object", json.dumps({"inputs": [3]}).encode(), "inputs[0] must be an object"),
    ("input without name", json.dumps({"inputs": [{"shape": [1]}]}).encode(), "inputs[0] has no string 'name'"),
    ("unknown input", body({"name": "history", "shape": [1], "datatype": "INT64", "data": [1]}),
     "unknown input 'history'; this model takes item_ids, user_id, k"),
    ("duplicate input", body(item_ids([[1]]), item_ids([[2]])), "input 'item_ids' is given more than once"),
    ("missing datatype", body({"name": "item_ids", "shape": [1, 1], "data": [1]}), "input 'item_ids' has no 'datatype'"),
    ("missing data", body({"name": "item_ids", "shape": [1, 1], "datatype": "INT64"}), "input 'item_ids' has no 'data'"),
    ("wrong datatype", body(item_ids([[1, 2]], datatype="FP32")), "datatype 'FP32' is not accepted; use INT64"),
    ("rank 1 shape", body(item_ids([1, 2, 3], shape=[3])), "shape [3] must have 2 dimensions"),
    ("shape not integers", body(item_ids([[1]], shape="1x1")), "'shape' must be an array of non-negative integers"),
    ("negative shape", body(item_ids([[1]], shape=[-1, 1])), "'shape' must be an array of non-negative integers"),
    ("shape and data disagree", body(item_ids([[1, 2, 3], [4, 5, 6]], shape=[2, 4])), "shape [2, 4] needs 8 elements, got 6"),
    ("data not a list", body(item_ids(7, shape=[1, 1])), "'data' must be an array, got an integer"),
    ("data nested too deep", body(item_ids([[[1], [2]]], shape=[1, 2])), "nested deeper than shape [1, 2]"),
    ("float ids", body(item_ids([[1.0, 2.5]])), "INT64 data must be integers, got [1.0, 2.5]"),
    ("string ids", body(item_ids([["1"]])), "INT64 data must be integers"),
    ("boolean ids", body(item_ids([[True, 2]])), "INT64 data must be integers, got [True]"),
    ("unknown item id", body(item_ids([[1, 51]])), "unknown item ids [51]; valid ids are 1..50, and 0 is left padding"),
    ("negative item id", body(item_ids([[-3, 2]])), "unknown item ids [-3]"),
    ("all-padding row", body(item_ids([[1, 2], [0, 0]])), "row 1 is empty (all padding)"),
    ("zero-length rows", body(item_ids([], shape=[1, 0])), "sequences are empty (seq_len 0)"),
    ("zero batch", body(item_ids([], shape=[0, 3])), "batch dimension is 0"),
    ("over-long row", body(item_ids([list(range(1, 10))])), "row 0 has 9 items, more than the model's limit of 8"),
    ("padding inside a row", body(item_ids([[3, 0, 4]])), "row 0 has padding id 0 after its first item; pad on the left only"),
    ("batch above limit", body(item_ids([[1]] * 5)), "batch of 5 rows exceeds this server's max batch size 4"),
    ("k zero", body(item_ids([[1]]), k_input(0)), "input 'k': 0 is out of range; use 1..50"),
    ("k above items", body(item_ids([[1]]), k_input(51)), "input 'k': 51 is out of range; use 1..50"),
    ("k two values", body(item_ids([[1]]), k_input([2, 3], shape=[2])), "must hold exactly one value"),
    ("k wrong datatype", body(item_ids([[1]]), k_input(2, datatype="INT32")), "input 'k': datatype 'INT32' is not accepted"),
    ("k float", body(item_ids([[1]]), k_input(2.0)), "input 'k': INT64 data must be integers"),
    ("only k", body(k_input(3)), "missing input 'item_ids'"),
    ("item_ids and user_id", body(item_ids([[1]]), user_input(["u1"])), "either input 'item_ids' or input 'user_id', not both"),
    ("empty user id", body(user_input([""])), "BYTES data must be strings of 1..256 characters"),
    ("user batch above limit", body(user_input(["u"] * 5)), "batch of 5 users exceeds this server's max batch size 4"),
    ("user id rank 2", body({"name": "user_id", "datatype": "BYTES", "shape": [1, 1], "data": ["u"]}),
     "shape [1, 1] must have 1 dimension"),
    ("id not a string", body(item_ids([[1]]), id=5), "'id' must be a string, got an integer"),
    ("unknown output", body(item_ids([[1]]), outputs=[{"name": "logits"}]), "outputs[0]: unknown output 'logits'"),
    ("output twice", body(item_ids([[1]]), outputs=[{"name": "scores"}, {"name": "scores"}]),
     "output 'scores' is requested more than once"),
]


@pytest.mark.parametrize(("case", "raw", "message"), BAD_REQUESTS, ids=[c[0] for c in BAD_REQUESTS])
def test_bad_request_is_rejected_with_400_and_a_message(case: str, raw: bytes, message: str) -> None:
    with pytest.raises(ProtocolError) as err:
        parse_infer_request(raw, SPEC, MAX_BATCH)
    assert err.value.status == 400, case
    assert message in err.value.message, f"{case}: {err.value.message!r}"


def test_unknown_id_outside_items_json_names_the_catalogue() -> None:
    with pytest.raises(ProtocolError) as err:
        parse_infer_request(body(item_ids([[2, 3]])), CATALOG_SPEC, MAX_BATCH)
    assert err.value.message == ("input 'item_ids': unknown item ids [3]; valid ids are the 3 ids in "
                                 "items.json, and 0 is left padding")


def test_nested_and_flat_data_parse_alike_and_left_padding_is_stripped() -> None:
    nested = parse_infer_request(body(item_ids([[0, 0, 5], [1, 2, 3]])), SPEC, MAX_BATCH)
    flat = parse_infer_request(body(item_ids([0, 0, 5, 1, 2, 3], shape=[2, 3])), SPEC, MAX_BATCH)
    assert nested.histories == flat.histories == ((5,), (1, 2, 3))
    assert nested.user_ids is None


def test_default_k_is_ten_capped_by_the_catalogue() -> None:
    assert parse_infer_request(body(item_ids([[1]])), SPEC, MAX_BATCH).k == 10
    assert parse_infer_request(body(item_ids([[2]])), CATALOG_SPEC, MAX_BATCH).k == 3
    assert parse_infer_request(body(item_ids([[2]]), k_input(2)), CATALOG_SPEC, MAX_BATCH).k == 2


def test_scalar_shaped_k_is_accepted() -> None:
    assert parse_infer_request(body(item_ids([[1]]), k_input(7, shape=[])), SPEC, MAX_BATCH).k == 7


def test_full_block_of_items_is_accepted() -> None:
    parsed = parse_infer_request(body(item_ids([list(range(1, 9))])), SPEC, MAX_BATCH)
    assert parsed.histories == (tuple(range(1, 9)),)


def test_user_ids_parse_from_bytes_and_int64() -> None:
    assert parse_infer_request(body(user_input(["a", "b"])), SPEC, MAX_BATCH).user_ids == ("a", "b")
    assert parse_infer_request(body(user_input([7, 8], datatype="INT64")), SPEC, MAX_BATCH).user_ids == ("7", "8")


def test_reply_has_requested_outputs_in_order_and_echoes_the_id() -> None:
    parsed = parse_infer_request(body(item_ids([[1], [2]]), k_input(2), id="req-1",
                                      outputs=[{"name": "scores"}, {"name": "top_items"}]), SPEC, MAX_BATCH)
    reply = infer_response(SPEC, parsed, [[3, 4], [5, 6]], [[-1.0, -2.0], [-1.5, -2.5]])
    assert reply == {
        "model_name": "recommender",
        "id": "req-1",
        "outputs": [
            {"name": "scores", "datatype": "FP32", "shape": [2, 2], "data": [-1.0, -2.0, -1.5, -2.5]},
            {"name": "top_items", "datatype": "INT64", "shape": [2, 2], "data": [3, 4, 5, 6]},
        ],
    }


def test_metadata_lists_inputs_outputs_and_limits() -> None:
    meta = model_metadata(SPEC, max_batch_size=MAX_BATCH)
    assert meta["name"] == "recommender"
    assert [i["name"] for i in meta["inputs"]] == ["item_ids", "user_id", "k"]
    assert [(o["name"], o["datatype"]) for o in meta["outputs"]] == [("top_items", "INT64"), ("scores", "FP32")]
    assert meta["parameters"] == {"block_size": 8, "num_items": 50, "num_valid_items": 50, "max_k": 50,
                                  "default_k": 10, "max_batch_size": MAX_BATCH}


def test_history_from_source_drops_unknown_ids_and_keeps_the_most_recent_block() -> None:
    assert history_from_source("u1", [0, 99, *range(1, 12)], SPEC) == tuple(range(4, 12))
    assert history_from_source("u2", [2, 3, 4], CATALOG_SPEC) == (2, 4)


def test_history_from_source_without_usable_items_is_a_400() -> None:
    with pytest.raises(ProtocolError) as err:
        history_from_source("u9", [99, 0], SPEC)
    assert (err.value.status, err.value.message) == (400, "user_id 'u9' has no usable item history; send 'item_ids' instead")
