"""Open Inference Protocol v2 (JSON over HTTP) for the next-item model: parsing, validation, replies.

Contract:

- Pure: no I/O, no torch, no web framework. Functions take bytes or plain values and return
  plain values or raise ``ProtocolError(status, message)``; the HTTP layer turns that into a
  4xx reply with the OIP error body ``{"error": message}``.
- Request inputs (https://kserve.github.io/website/latest/modelserving/data_plane/v2_protocol/):
  ``item_ids`` INT64 shape [batch, seq_len], each row one user's recent items, oldest first,
  optionally left-padded with 0; or ``user_id`` (BYTES or INT64, shape [batch]) for a server
  with a history source (see ``history.py``); optional ``k`` INT64 with one element.
  ``data`` may be flat (row-major) or nested. Exactly one of ``item_ids`` / ``user_id``.
- Outputs: ``top_items`` INT64 [batch, k] and ``scores`` FP32 [batch, k] (log-probabilities,
  best first). A request may name a subset in ``outputs``.
- Validation is complete before anything is queued: every row is non-empty, at most
  ``block_size`` items long, uses only known item ids, and the batch fits ``max_batch_size``.

- Binary tensor data (Triton's ``binary_tensor_data`` extension, the default of Triton's own
  clients): with the ``Inference-Header-Content-Length: N`` header the first N bytes are the
  JSON request and each input with ``parameters.binary_data_size`` takes that many bytes after
  it, in input order (INT64 little-endian row-major; BYTES as 4-byte little-endian lengths each
  followed by the bytes). Outputs are always answered as JSON ``data``, which those clients read
  too (``binary_data`` requested on an output is ignored).
  https://github.com/triton-inference-server/server/blob/main/docs/protocol/extension_binary_data.md

Deliberately not supported: request-level parameters (ignored), model versions other than the
one loaded, binary outputs, shared-memory and other Triton extensions.
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Container, Sequence
from dataclasses import dataclass
from typing import Any

ITEM_IDS = "item_ids"
USER_ID = "user_id"
K = "k"
TOP_ITEMS = "top_items"
SCORES = "scores"
INPUT_NAMES = (ITEM_IDS, USER_ID, K)
OUTPUT_NAMES = (TOP_ITEMS, SCORES)

MAX_K = 1000
"""Largest ``k`` accepted, which bounds the reply size to batch × 1000 entries."""
MAX_USER_ID_CHARS = 256
INTEGER_DATATYPES = ("INT64",)
USER_ID_DATATYPES = ("BYTES", "INT64")
_MAX_LISTED = 10  # offending values quoted in one message
BINARY_HEADER = "inference-header-content-length"
"""The request header of the binary tensor extension: bytes of JSON before the binary data."""
EXTENSIONS = ("binary_tensor_data",)
"""Protocol extensions the server implements (listed in ``GET /v2``)."""


class ProtocolError(Exception):
    """A request the server will not run; ``status`` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class ModelSpec:
    """What the protocol layer needs to know about the loaded model."""

    name: str
    """Model name in the URL path (``/v2/models/{name}``)."""
    num_items: int
    """Real items are 1..num_items; 0 is padding."""
    block_size: int
    """Longest history the model reads, in items."""
    valid_items: Container[int]
    """Item ids accepted in inputs and returned in outputs (from ``items.json``, or 1..num_items)."""
    num_valid_items: int
    """How many ids ``valid_items`` holds; caps ``k``."""
    default_k: int = 10
    """``k`` when the request sends none (capped at ``num_valid_items``)."""
    platform: str = "pytorch"

    @property
    def max_k(self) -> int:
        return min(MAX_K, self.num_valid_items)

    @property
    def effective_default_k(self) -> int:
        return min(self.default_k, self.max_k)


@dataclass(frozen=True)
class InferRequest:
    """A validated inference request. Exactly one of ``histories`` / ``user_ids`` is set."""

    request_id: str | None
    histories: tuple[tuple[int, ...], ...] | None
    """One row per user: item ids, oldest first, padding removed, 1..block_size long."""
    user_ids: tuple[str, ...] | None
    """Users whose histories the server's history source must look up."""
    k: int
    outputs: tuple[str, ...]
    """Output names to return, in the order requested (default: all)."""

    @property
    def batch_size(self) -> int:
        rows = self.histories if self.histories is not None else self.user_ids
        return len(rows or ())


def decode_json(body: bytes) -> Any:
    """Parse a JSON request body; invalid JSON is a 400."""
    if not body:
        raise ProtocolError(400, "request body is empty; send an OIP v2 JSON inference request")
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ProtocolError(400, f"request body is not valid JSON: {exc}") from None


def parse_infer_request(body: bytes, spec: ModelSpec, max_batch_size: int,
                        json_header_length: str | None = None) -> InferRequest:
    """Decode and validate an OIP v2 inference request against ``spec``.

    ``json_header_length`` is the ``Inference-Header-Content-Length`` header, when sent: the
    body is then a JSON request followed by binary tensor data."""
    binary = b""
    if json_header_length is not None:
        length = json_header_length.strip()
        if not length.isdigit() or int(length) > len(body):
            raise ProtocolError(400, f"header Inference-Header-Content-Length: {json_header_length!r} must be the "
                                     f"byte length of the JSON part, at most the body's {len(body)} bytes")
        body, binary = body[: int(length)], body[int(length) :]
    payload = decode_json(body)
    if not isinstance(payload, dict):
        raise ProtocolError(400, f"request body must be a JSON object, got {_json_type(payload)}")
    if json_header_length is not None:
        _inline_binary_inputs(payload, binary)
    request_id = payload.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise ProtocolError(400, f"'id' must be a string, got {_json_type(request_id)}")
    inputs = _inputs_by_name(payload.get("inputs"))
    outputs = _requested_outputs(payload.get("outputs"))

    if ITEM_IDS in inputs and USER_ID in inputs:
        raise ProtocolError(400, f"send either input '{ITEM_IDS}' or input '{USER_ID}', not both")
    k = _parse_k(inputs[K], spec) if K in inputs else spec.effective_default_k
    if ITEM_IDS in inputs:
        histories = _parse_item_ids(inputs[ITEM_IDS], spec, max_batch_size)
        return InferRequest(request_id, histories, None, k, outputs)
    if USER_ID in inputs:
        user_ids = _parse_user_ids(inputs[USER_ID], max_batch_size)
        return InferRequest(request_id, None, user_ids, k, outputs)
    raise ProtocolError(400, f"missing input '{ITEM_IDS}' (INT64 [batch, seq_len]: each user's recent items)")


def history_from_source(user_id: str, items: Sequence[int], spec: ModelSpec) -> tuple[int, ...]:
    """A history-source row made fit for the model: unknown ids and padding dropped, the most
    recent ``block_size`` items kept. Data the client cannot fix is not the client's error, so
    only an empty result is refused."""
    kept = tuple(i for i in items if isinstance(i, int) and i != 0 and i in spec.valid_items)
    if not kept:
        raise ProtocolError(400, f"user_id '{user_id}' has no usable item history; send '{ITEM_IDS}' instead")
    return kept[-spec.block_size :]


def infer_response(spec: ModelSpec, request: InferRequest, items: Sequence[Sequence[int]],
                   scores: Sequence[Sequence[float]]) -> dict[str, Any]:
    """The OIP v2 reply for ``request`` given per-row top items and scores."""
    batch, k = len(items), request.k
    tensors = {
        TOP_ITEMS: {"name": TOP_ITEMS, "datatype": "INT64", "shape": [batch, k],
                    "data": [i for row in items for i in row]},
        SCORES: {"name": SCORES, "datatype": "FP32", "shape": [batch, k],
                 "data": [s for row in scores for s in row]},
    }
    reply: dict[str, Any] = {"model_name": spec.name, "outputs": [tensors[name] for name in request.outputs]}
    if request.request_id is not None:
        reply["id"] = request.request_id
    return reply


def model_metadata(spec: ModelSpec, max_batch_size: int) -> dict[str, Any]:
    """The OIP v2 model metadata reply, with the limits a client needs as ``parameters``."""
    return {
        "name": spec.name,
        "versions": [],
        "platform": spec.platform,
        "inputs": [
            {"name": ITEM_IDS, "datatype": "INT64", "shape": [-1, -1]},
            {"name": USER_ID, "datatype": "BYTES", "shape": [-1]},
            {"name": K, "datatype": "INT64", "shape": [1]},
        ],
        "outputs": [
            {"name": TOP_ITEMS, "datatype": "INT64", "shape": [-1, -1]},
            {"name": SCORES, "datatype": "FP32", "shape": [-1, -1]},
        ],
        "parameters": {
            "block_size": spec.block_size,
            "num_items": spec.num_items,
            "num_valid_items": spec.num_valid_items,
            "max_k": spec.max_k,
            "default_k": spec.effective_default_k,
            "max_batch_size": max_batch_size,
        },
    }


def error_body(message: str) -> dict[str, str]:
    """The OIP v2 error reply."""
    return {"error": message}


# --- helpers -------------------------------------------------------------------------------


def _inline_binary_inputs(payload: dict[str, Any], binary: bytes) -> None:
    """Replace each binary input's bytes by its JSON ``data`` (the binary tensor extension)."""
    raw = payload.get("inputs")
    offset = 0
    for n, tensor in enumerate(raw if isinstance(raw, list) else []):
        params = tensor.get("parameters") if isinstance(tensor, dict) else None
        size = params.get("binary_data_size") if isinstance(params, dict) else None
        if size is None:
            continue
        name = tensor.get("name", f"inputs[{n}]")
        if type(size) is not int or size < 0:
            raise ProtocolError(400, f"input '{name}': parameters.binary_data_size must be a non-negative integer, got {size!r}")
        if "data" in tensor:
            raise ProtocolError(400, f"input '{name}' has both 'data' and binary data; send one")
        chunk = binary[offset : offset + size]
        if len(chunk) != size:
            raise ProtocolError(400, f"input '{name}': binary_data_size is {size} bytes but only {len(chunk)} "
                                     "follow the JSON part; check Inference-Header-Content-Length")
        offset += size
        tensor["data"] = _decode_binary(chunk, tensor.get("datatype"), name)
    if offset != len(binary):
        raise ProtocolError(400, f"{len(binary) - offset} bytes after the JSON part belong to no input; "
                                 "give each binary input parameters.binary_data_size")


def _decode_binary(chunk: bytes, datatype: Any, name: str) -> list[Any]:
    if datatype == "INT64":
        if len(chunk) % 8:
            raise ProtocolError(400, f"input '{name}': {len(chunk)} bytes of INT64 is not a multiple of 8")
        return list(struct.unpack(f"<{len(chunk) // 8}q", chunk))
    if datatype == "BYTES":
        items, offset = [], 0
        while offset < len(chunk):
            if offset + 4 > len(chunk):
                raise ProtocolError(400, f"input '{name}': truncated BYTES element length at byte {offset}")
            (length,) = struct.unpack_from("<I", chunk, offset)
            offset += 4
            if offset + length > len(chunk):
                raise ProtocolError(400, f"input '{name}': BYTES element of {length} bytes runs past the data")
            try:
                items.append(chunk[offset : offset + length].decode())
            except UnicodeDecodeError:
                raise ProtocolError(400, f"input '{name}': BYTES element at byte {offset} is not UTF-8") from None
            offset += length
        return items
    raise ProtocolError(400, f"input '{name}': binary data of datatype {datatype!r} is not accepted; use INT64 or BYTES")


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
            list: "an array", dict: "an object"}.get(type(value), type(value).__name__)


def _inputs_by_name(raw: Any) -> dict[str, dict[str, Any]]:
    if raw is None:
        raise ProtocolError(400, f"missing 'inputs'; send a list with input '{ITEM_IDS}'")
    if not isinstance(raw, list) or not raw:
        raise ProtocolError(400, f"'inputs' must be a non-empty array, got {_json_type(raw)}")
    found: dict[str, dict[str, Any]] = {}
    for n, tensor in enumerate(raw):
        if not isinstance(tensor, dict):
            raise ProtocolError(400, f"inputs[{n}] must be an object, got {_json_type(tensor)}")
        name = tensor.get("name")
        if not isinstance(name, str):
            raise ProtocolError(400, f"inputs[{n}] has no string 'name'")
        if name not in INPUT_NAMES:
            raise ProtocolError(400, f"unknown input '{name}'; this model takes {', '.join(INPUT_NAMES)}")
        if name in found:
            raise ProtocolError(400, f"input '{name}' is given more than once")
        for field in ("shape", "datatype", "data"):
            if field not in tensor:
                raise ProtocolError(400, f"input '{name}' has no '{field}'")
        found[name] = tensor
    return found


def _requested_outputs(raw: Any) -> tuple[str, ...]:
    if raw is None:
        return OUTPUT_NAMES
    if not isinstance(raw, list) or not raw:
        raise ProtocolError(400, f"'outputs' must be a non-empty array when given, got {_json_type(raw)}")
    names: list[str] = []
    for n, entry in enumerate(raw):
        name = entry.get("name") if isinstance(entry, dict) else None
        if name not in OUTPUT_NAMES:
            raise ProtocolError(400, f"outputs[{n}]: unknown output {name!r}; this model returns "
                                     f"{', '.join(OUTPUT_NAMES)}")
        if name in names:
            raise ProtocolError(400, f"output '{name}' is requested more than once")
        names.append(name)
    return tuple(names)


def _shape(tensor: dict[str, Any], name: str, rank: int | None) -> list[int]:
    shape = tensor["shape"]
    if not isinstance(shape, list) or not all(type(d) is int and d >= 0 for d in shape):
        raise ProtocolError(400, f"input '{name}': 'shape' must be an array of non-negative integers, got {shape!r}")
    if rank is not None and len(shape) != rank:
        raise ProtocolError(400, f"input '{name}': shape {shape} must have {rank} dimension"
                                 f"{'s' if rank != 1 else ''}")
    return shape


def _datatype(tensor: dict[str, Any], name: str, allowed: Sequence[str]) -> str:
    datatype = tensor["datatype"]
    if datatype not in allowed:
        raise ProtocolError(400, f"input '{name}': datatype {datatype!r} is not accepted; use {' or '.join(allowed)}")
    return str(datatype)


def _flat_data(tensor: dict[str, Any], name: str, shape: Sequence[int]) -> list[Any]:
    data = tensor["data"]
    if not isinstance(data, list):
        raise ProtocolError(400, f"input '{name}': 'data' must be an array, got {_json_type(data)}")
    flat: list[Any] = []
    stack = [iter(data)]
    while stack:  # iterative flatten: nested (row-major) or flat data both allowed
        for value in stack[-1]:
            if isinstance(value, list):
                if len(stack) >= max(len(shape), 1):
                    raise ProtocolError(400, f"input '{name}': 'data' is nested deeper than shape {list(shape)}")
                stack.append(iter(value))
                break
            flat.append(value)
        else:
            stack.pop()
    expected = math.prod(shape)
    if len(flat) != expected:
        raise ProtocolError(400, f"input '{name}': shape {list(shape)} needs {expected} elements, got {len(flat)}")
    return flat


def _integers(values: list[Any], name: str) -> list[int]:
    bad = [v for v in values if type(v) is not int]  # bool is an int subclass: refuse it too
    if bad:
        raise ProtocolError(400, f"input '{name}': INT64 data must be integers, got {bad[:_MAX_LISTED]!r}")
    return values


def _parse_k(tensor: dict[str, Any], spec: ModelSpec) -> int:
    shape = _shape(tensor, K, None)
    _datatype(tensor, K, INTEGER_DATATYPES)
    if math.prod(shape) != 1:
        raise ProtocolError(400, f"input '{K}': shape {shape} must hold exactly one value, e.g. [1]")
    (k,) = _integers(_flat_data(tensor, K, shape), K)
    if not 1 <= k <= spec.max_k:
        raise ProtocolError(400, f"input '{K}': {k} is out of range; use 1..{spec.max_k}")
    return k


def _parse_item_ids(tensor: dict[str, Any], spec: ModelSpec, max_batch_size: int) -> tuple[tuple[int, ...], ...]:
    shape = _shape(tensor, ITEM_IDS, 2)
    _datatype(tensor, ITEM_IDS, INTEGER_DATATYPES)
    batch, seq_len = shape
    if batch == 0:
        raise ProtocolError(400, f"input '{ITEM_IDS}': batch dimension is 0; send at least one row")
    if batch > max_batch_size:
        raise ProtocolError(400, f"input '{ITEM_IDS}': batch of {batch} rows exceeds this server's "
                                 f"max batch size {max_batch_size}; split the request")
    if seq_len == 0:
        raise ProtocolError(400, f"input '{ITEM_IDS}': sequences are empty (seq_len 0); send at least one item id")
    flat = _integers(_flat_data(tensor, ITEM_IDS, shape), ITEM_IDS)
    unknown = sorted({i for i in flat if i != 0 and i not in spec.valid_items})
    if unknown:
        raise ProtocolError(400, f"input '{ITEM_IDS}': unknown item ids {unknown[:_MAX_LISTED]}"
                                 f"{' ...' if len(unknown) > _MAX_LISTED else ''}; "
                                 f"valid ids are {_describe_valid(spec)}, and 0 is left padding")
    rows = []
    for r in range(batch):
        row = flat[r * seq_len:(r + 1) * seq_len]
        start = 0
        while start < seq_len and row[start] == 0:
            start += 1
        items = tuple(row[start:])
        if not items:
            raise ProtocolError(400, f"input '{ITEM_IDS}': row {r} is empty (all padding); send at least one item id")
        if 0 in items:
            raise ProtocolError(400, f"input '{ITEM_IDS}': row {r} has padding id 0 after its first item; "
                                     "pad on the left only")
        if len(items) > spec.block_size:
            raise ProtocolError(400, f"input '{ITEM_IDS}': row {r} has {len(items)} items, more than the model's "
                                     f"limit of {spec.block_size}; send the {spec.block_size} most recent")
        rows.append(items)
    return tuple(rows)


def _parse_user_ids(tensor: dict[str, Any], max_batch_size: int) -> tuple[str, ...]:
    shape = _shape(tensor, USER_ID, 1)
    datatype = _datatype(tensor, USER_ID, USER_ID_DATATYPES)
    if shape[0] == 0:
        raise ProtocolError(400, f"input '{USER_ID}': batch dimension is 0; send at least one user id")
    if shape[0] > max_batch_size:
        raise ProtocolError(400, f"input '{USER_ID}': batch of {shape[0]} users exceeds this server's "
                                 f"max batch size {max_batch_size}; split the request")
    flat = _flat_data(tensor, USER_ID, shape)
    if datatype == "INT64":
        return tuple(str(u) for u in _integers(flat, USER_ID))
    bad = [u for u in flat if not isinstance(u, str) or not 0 < len(u) <= MAX_USER_ID_CHARS]
    if bad:
        raise ProtocolError(400, f"input '{USER_ID}': BYTES data must be strings of 1..{MAX_USER_ID_CHARS} "
                                 f"characters, got {bad[:_MAX_LISTED]!r}")
    return tuple(flat)


def _describe_valid(spec: ModelSpec) -> str:
    if isinstance(spec.valid_items, range):
        return f"{spec.valid_items.start}..{spec.valid_items.stop - 1}"
    return f"the {spec.num_valid_items} ids in items.json"
