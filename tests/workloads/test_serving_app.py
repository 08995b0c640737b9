"""The model server over HTTP (Starlette TestClient): every OIP v2 route, errors, auth, metrics,
readiness and draining, history sources, and batched-equals-unbatched results."""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import torch
from starlette.testclient import TestClient

from tests.workloads.test_serving_support import (  # noqa: F401 (one_torch_thread is a fixture)
    infer_body,
    one_torch_thread,
    wait_until,
    write_model_dir,
)
from workloads.model import ModelConfig, NextItemModel
from workloads.serving.app import ServerConfig, create_app
from workloads.serving.history import HistoryLookupError, InMemoryHistorySource
from workloads.serving.model_runner import ModelDirError, ModelRunner, PredictJob
from workloads.serving.protocol import ModelSpec

INFER = "/v2/models/recommender/infer"
TOKEN = "s3cret-token"


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_model_dir(tmp_path_factory.mktemp("model"))


@contextlib.contextmanager
def serving(model_dir: Path, config: ServerConfig = ServerConfig(max_batch_size=8, max_batch_delay_ms=1),
            **kwargs: Any) -> Iterator[TestClient]:
    app = create_app(ModelRunner(model_dir), config, **kwargs)
    with TestClient(app, raise_server_exceptions=True) as client:
        wait_until(lambda: client.get("/v2/health/ready").status_code == 200, what="readiness")
        yield client


@pytest.fixture(scope="module")
def client(model_dir: Path) -> Iterator[TestClient]:
    with serving(model_dir) as c:
        yield c


def top_items(reply: dict[str, Any]) -> list[int]:
    return next(o["data"] for o in reply["outputs"] if o["name"] == "top_items")


def scores(reply: dict[str, Any]) -> list[float]:
    return next(o["data"] for o in reply["outputs"] if o["name"] == "scores")


def reference_model(model_dir: Path) -> NextItemModel:
    from safetensors.torch import load_file

    model = NextItemModel(ModelConfig.from_json((model_dir / "config.json").read_text()))
    model.load_state_dict(load_file(str(model_dir / "model.safetensors")))
    return model.eval()


# --- routes ---------------------------------------------------------------------------------


def test_health_routes_answer_live_and_ready(client: TestClient) -> None:
    assert client.get("/v2/health/live").json() == {"live": True}
    assert client.get("/v2/health/ready").json() == {"ready": True}
    assert client.get("/v2/models/recommender/ready").json() == {"name": "recommender", "ready": True}


def test_server_and_model_metadata(client: TestClient) -> None:
    assert client.get("/v2").json()["name"] == "gpuplane-serving"
    meta = client.get("/v2/models/recommender").json()
    assert meta["name"] == "recommender"
    assert meta["parameters"]["block_size"] == 8
    assert meta["parameters"]["max_batch_size"] == 8


def test_infer_returns_top_items_and_scores_equal_to_the_model(client: TestClient, model_dir: Path) -> None:
    reply = client.post(INFER, json=infer_body([[0, 3, 4, 5], [0, 0, 0, 7]], k=3, id="r1"))
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["id"] == "r1"
    assert [(o["name"], o["datatype"], o["shape"]) for o in body["outputs"]] == [
        ("top_items", "INT64", [2, 3]), ("scores", "FP32", [2, 3])]
    # The server left-pads to block_size; the model's own recommend() on that input agrees.
    idx = torch.tensor([[0, 0, 0, 0, 0, 3, 4, 5], [0, 0, 0, 0, 0, 0, 0, 7]])
    items, logp = reference_model(model_dir).recommend(idx, 3)
    assert top_items(body) == items.flatten().tolist()
    assert scores(body) == pytest.approx(logp.flatten().tolist(), abs=1e-5)


def test_default_k_is_ten(client: TestClient) -> None:
    body = client.post(INFER, json=infer_body([[1, 2]])).json()
    assert body["outputs"][0]["shape"] == [1, 10]
    assert 0 not in top_items(body)


# --- errors ---------------------------------------------------------------------------------

BIG = 2 << 20
HTTP_ERRORS: list[tuple[str, str, str, dict[str, Any], int, str]] = [
    ("bad json", "POST", INFER, {"content": b"{nope"}, 400, "request body is not valid JSON"),
    ("wrong datatype", "POST", INFER,
     {"json": {"inputs": [{"name": "item_ids", "datatype": "FP32", "shape": [1, 1], "data": [1]}]}}, 400,
     "datatype 'FP32' is not accepted"),
    ("wrong shape", "POST", INFER,
     {"json": {"inputs": [{"name": "item_ids", "datatype": "INT64", "shape": [2], "data": [1, 2]}]}}, 400,
     "must have 2 dimensions"),
    ("unknown item", "POST", INFER, {"json": infer_body([[1, 51]])}, 400, "unknown item ids [51]"),
    ("empty sequence", "POST", INFER, {"json": infer_body([[0, 0]])}, 400, "row 0 is empty"),
    ("over-long sequence", "POST", INFER, {"json": infer_body([list(range(1, 10))])}, 400,
     "more than the model's limit of 8"),
    ("batch above max", "POST", INFER, {"json": infer_body([[1]] * 9)}, 400, "exceeds this server's max batch size 8"),
    ("k out of range", "POST", INFER, {"json": infer_body([[1]], k=0)}, 400, "input 'k': 0 is out of range"),
    ("user_id without a source", "POST", INFER,
     {"json": {"inputs": [{"name": "user_id", "datatype": "BYTES", "shape": [1], "data": ["u1"]}]}}, 400,
     "this server has none configured"),
    ("body above limit", "POST", INFER, {"content": b"[" + b"1," * (BIG // 2) + b"1]"}, 413,
     "exceeds the limit of 1048576 bytes (--max-body-bytes)"),
    ("unknown model infer", "POST", "/v2/models/other/infer", {"json": infer_body([[1]])}, 404,
     "unknown model 'other'; this server serves 'recommender'"),
    ("unknown model metadata", "GET", "/v2/models/other", {}, 404, "unknown model 'other'"),
    ("unknown model ready", "GET", "/v2/models/other/ready", {}, 404, "unknown model 'other'"),
    ("unknown route", "GET", "/v1/models", {}, 404, "no route /v1/models"),
    ("wrong method", "GET", INFER, {}, 405, "method GET is not allowed on /v2/models/recommender/infer"),
]


@pytest.mark.parametrize(("case", "method", "path", "kwargs", "status", "message"), HTTP_ERRORS,
                         ids=[c[0] for c in HTTP_ERRORS])
def test_bad_requests_get_a_4xx_oip_error_body(client: TestClient, case: str, method: str, path: str,
                                               kwargs: dict[str, Any], status: int, message: str) -> None:
    reply = client.request(method, path, **kwargs)
    assert reply.status_code == status, f"{case}: {reply.status_code} {reply.text}"
    body = reply.json()
    assert list(body) == ["error"], case
    assert message in body["error"], f"{case}: {body['error']!r}"


def test_streamed_body_above_limit_is_refused_without_content_length(client: TestClient) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(40):
            yield b" " * 65536  # 2.5 MiB in all, sent chunked

    reply = client.post(INFER, content=chunks())
    assert reply.status_code == 413
    assert "exceeds the limit of 1048576 bytes" in reply.json()["error"]


# --- auth -----------------------------------------------------------------------------------

AUTH_CASES: list[tuple[str, str, str, dict[str, str], int]] = [
    ("live without token", "GET", "/v2/health/live", {}, 200),
    ("ready without token", "GET", "/v2/health/ready", {}, 200),
    ("model ready without token", "GET", "/v2/models/recommender/ready", {}, 200),
    ("metrics without token", "GET", "/metrics", {}, 200),
    ("server metadata without token", "GET", "/v2", {}, 401),
    ("metadata without token", "GET", "/v2/models/recommender", {}, 401),
    ("metadata with wrong token", "GET", "/v2/models/recommender", {"Authorization": "Bearer nope"}, 401),
    ("metadata with token", "GET", "/v2/models/recommender", {"Authorization": f"Bearer {TOKEN}"}, 200),
    ("infer without token", "POST", INFER, {}, 401),
    ("infer with basic auth", "POST", INFER, {"Authorization": f"Basic {TOKEN}"}, 401),
    ("infer with wrong token", "POST", INFER, {"Authorization": f"Bearer {TOKEN}x"}, 401),
    ("infer with token", "POST", INFER, {"Authorization": f"Bearer {TOKEN}"}, 200),
]


@pytest.fixture(scope="module")
def auth_client(model_dir: Path) -> Iterator[TestClient]:
    with serving(model_dir, ServerConfig(auth_token=TOKEN)) as c:
        yield c


@pytest.mark.parametrize(("case", "method", "path", "headers", "status"), AUTH_CASES, ids=[c[0] for c in AUTH_CASES])
def test_bearer_token_guards_metadata_and_inference_only(auth_client: TestClient, case: str, method: str, path: str,
                                                         headers: dict[str, str], status: int) -> None:
    kwargs: dict[str, Any] = {"json": infer_body([[1, 2]])} if method == "POST" else {}
    reply = auth_client.request(method, path, headers=headers, **kwargs)
    assert reply.status_code == status, f"{case}: {reply.text}"
    if status == 401:
        assert reply.headers["WWW-Authenticate"].startswith("Bearer")
        assert "bearer token" in reply.json()["error"]


# --- metrics --------------------------------------------------------------------------------


def test_metrics_expose_requests_latency_batches_queue_and_cold_start(client: TestClient) -> None:
    client.post(INFER, json=infer_body([[1, 2]]))
    client.post("/v2/models/other/infer", json=infer_body([[1]]))
    text = client.get("/metrics").text
    for line in [
        'gpuplane_serving_requests_total{code="200",route="/v2/models/{name}/infer"}',
        'gpuplane_serving_requests_total{code="404",route="/v2/models/{name}/infer"}',
        'gpuplane_serving_latency_seconds_bucket{le="0.005",stage="queue"}',
        'gpuplane_serving_latency_seconds_count{stage="inference"}',
        'gpuplane_serving_latency_seconds_count{stage="total"}',
        "gpuplane_serving_batch_size_count",
        "gpuplane_serving_queue_depth 0.0",
        "gpuplane_serving_in_flight_requests",
        "gpuplane_serving_ready 1.0",
        *(f'gpuplane_serving_cold_start_phase_seconds{{phase="{p}"}}'
          for p in ("interpreter", "server_start", "imports", "weights", "warmup", "total")),
    ]:
        assert line in text, f"missing {line!r} in /metrics"


# --- batching -------------------------------------------------------------------------------

ROWS = [[1], [2, 3], [4, 5, 6], [7, 8, 9, 10, 11, 12, 13, 14], [50, 49], [3, 3, 3], [12], [40, 41, 42, 43]]


def test_runner_batched_results_equal_one_row_at_a_time(model_dir: Path) -> None:
    runner = ModelRunner(model_dir)
    runner.load()
    jobs = [PredictJob((tuple(r),), k) for r, k in zip(ROWS, [5, 3, 5, 1, 5, 4, 5, 2], strict=True)]
    batched = runner.predict(jobs)
    single = [runner.predict([job])[0] for job in jobs]
    for b, s in zip(batched, single, strict=True):
        assert b.items == s.items
        assert b.scores[0] == pytest.approx(s.scores[0], abs=1e-5)


def test_trimmed_padding_with_position_offset_equals_the_model_on_full_padding(model_dir: Path) -> None:
    from workloads.serving.model_runner import next_item_logits

    model = reference_model(model_dir)
    full = torch.tensor([[0, 0, 0, 0, 0, 3, 4, 5], [0, 0, 0, 0, 0, 0, 0, 7], [0, 0, 0, 0, 9, 8, 7, 6]])
    expected = model(full)[:, -1, :]
    for keep in (4, 5, 8):  # drop 4, 3 or no all-padding columns
        with torch.inference_mode():
            got = next_item_logits(model, full[:, -keep:], position_offset=8 - keep)
        torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="position_offset 5 with 4 columns exceeds block_size 8"):
        next_item_logits(model, full[:, -4:], position_offset=5)


def test_runner_pads_to_the_longest_row_not_to_block_size(model_dir: Path) -> None:
    runner = ModelRunner(model_dir)
    runner.load()
    seen: list[tuple[int, ...]] = []
    model = runner._model
    hook = model.wte.register_forward_hook(lambda module, args, out: seen.append(tuple(args[0].shape)))
    try:
        runner.predict([PredictJob(((1, 2),), 3), PredictJob(((4, 5, 6), (7,)), 3)])
    finally:
        hook.remove()
    assert seen == [(3, 3)]  # 3 rows, 3 columns: the longest row, not block_size 8


def test_concurrent_http_requests_are_batched_and_match_sequential_replies(client: TestClient,
                                                                          model_dir: Path) -> None:
    sequential = [client.post(INFER, json=infer_body([r], k=5)).json() for r in ROWS]
    with serving(model_dir, ServerConfig(max_batch_size=8, max_batch_delay_ms=200)) as c:
        batches_before = _metric(c, "gpuplane_serving_batch_size_count")
        with concurrent.futures.ThreadPoolExecutor(len(ROWS)) as pool:
            concurrent_replies = list(pool.map(lambda r: c.post(INFER, json=infer_body([r], k=5)).json(), ROWS))
        batches = _metric(c, "gpuplane_serving_batch_size_count") - batches_before
    assert batches < len(ROWS), "concurrent requests should share batches"
    for seq, con in zip(sequential, concurrent_replies, strict=True):
        assert top_items(con) == top_items(seq)
        assert scores(con) == pytest.approx(scores(seq), abs=1e-5)


def _metric(client: TestClient, name: str) -> float:
    for line in client.get("/metrics").text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise KeyError(name)


# --- items.json -----------------------------------------------------------------------------


def test_items_json_limits_inputs_and_recommendations(tmp_path: Path) -> None:
    catalogue = [2, 4, 6, 8, 10, 12]
    with serving(write_model_dir(tmp_path / "m", items=catalogue)) as c:
        ok = c.post(INFER, json=infer_body([[2, 4], [0, 12]], k=6)).json()
        assert sorted(top_items(ok)[:6]) == catalogue and sorted(top_items(ok)[6:]) == catalogue
        assert c.get("/v2/models/recommender").json()["parameters"]["max_k"] == 6
        bad = c.post(INFER, json=infer_body([[3]]))
        assert bad.status_code == 400
        assert "the 6 ids in items.json" in bad.json()["error"]


# --- history source -------------------------------------------------------------------------


class FailingSource:
    name = "http://feast.invalid"

    async def histories(self, user_ids: Sequence[str]) -> Sequence[Sequence[int]]:
        raise HistoryLookupError("connection refused")

    async def aclose(self) -> None:
        return None


def user_body(*users: str) -> dict[str, Any]:
    return {"inputs": [{"name": "user_id", "datatype": "BYTES", "shape": [len(users)], "data": list(users)},
                       {"name": "k", "datatype": "INT64", "shape": [1], "data": [3]}]}


def test_user_id_requests_use_the_history_source(model_dir: Path) -> None:
    source = InMemoryHistorySource({"alice": [3, 4, 5], "bob": [99, 7]})
    with serving(model_dir, history_source=source) as c:
        by_user = c.post(INFER, json=user_body("alice", "bob")).json()
        by_items = c.post(INFER, json=infer_body([[3, 4, 5], [0, 0, 7]], k=3)).json()
        assert top_items(by_user) == top_items(by_items)
        unknown = c.post(INFER, json=user_body("carol"))
        assert (unknown.status_code, unknown.json()) == (
            400, {"error": "user_id 'carol' has no usable item history; send 'item_ids' instead"})


def test_failing_history_source_is_a_502(model_dir: Path) -> None:
    with serving(model_dir, history_source=FailingSource()) as c:
        reply = c.post(INFER, json=user_body("alice"))
    assert reply.status_code == 502
    assert reply.json() == {"error": "history source http://feast.invalid failed: connection refused"}


# --- lifecycle ------------------------------------------------------------------------------


class GatedRunner(ModelRunner):
    """A runner whose load() waits for a signal from the test."""

    gate: threading.Event

    def load(self) -> ModelSpec:
        self.gate.wait(10)
        return super().load()


def test_requests_before_the_model_is_loaded_get_503_with_retry_after(model_dir: Path) -> None:
    runner = GatedRunner(model_dir)
    runner.gate = threading.Event()
    with TestClient(create_app(runner)) as c:
        assert c.get("/v2/health/live").status_code == 200
        assert c.get("/v2/health/ready").status_code == 503
        assert c.get("/v2/models/recommender/ready").json() == {"name": "recommender", "ready": False}
        loading = c.post(INFER, json=infer_body([[1]]))
        assert (loading.status_code, loading.headers["Retry-After"]) == (503, "1")
        assert loading.json() == {"error": "model 'recommender' is still loading"}
        runner.gate.set()
        wait_until(lambda: c.get("/v2/health/ready").status_code == 200, what="readiness")
        assert c.post(INFER, json=infer_body([[1]])).status_code == 200


def test_load_failure_calls_on_fatal_and_stays_unready(tmp_path: Path) -> None:
    broken = write_model_dir(tmp_path / "m")
    (broken / "config.json").write_text(json.dumps({"num_items": 50, "block_size": 8, "n_layer": 3,
                                                    "n_head": 2, "n_embd": 16}))
    fatal = threading.Event()
    with TestClient(create_app(ModelRunner(broken), on_fatal=fatal.set)) as c:
        assert fatal.wait(20)
        assert c.get("/v2/health/ready").status_code == 503
        assert "does not match" in (c.app.state.serving.load_error or "")  # type: ignore[attr-defined]


def test_draining_server_is_unready_and_refuses_new_inference(model_dir: Path) -> None:
    with serving(model_dir) as c:
        c.app.state.serving.begin_drain()  # type: ignore[attr-defined]
        assert c.get("/v2/health/ready").status_code == 503
        reply = c.post(INFER, json=infer_body([[1]]))
        assert (reply.status_code, reply.headers["Retry-After"]) == (503, "1")
        assert reply.json() == {"error": "server is shutting down; retry on another replica"}


# --- model directory ------------------------------------------------------------------------


def test_missing_export_files_are_named(tmp_path: Path) -> None:
    from workloads.serving.model_runner import check_model_dir

    with pytest.raises(ModelDirError, match=r"missing model\.safetensors, config\.json"):
        check_model_dir(tmp_path)
    with pytest.raises(ModelDirError, match="not a directory"):
        check_model_dir(tmp_path / "absent")


def test_items_json_outside_the_vocabulary_is_refused(tmp_path: Path) -> None:
    model_dir = write_model_dir(tmp_path / "m", items=[1, 51])
    with pytest.raises(ModelDirError, match=r"ids \[51\] are outside 1..50"):
        ModelRunner(model_dir).load()


def test_sagemaker_ping_and_invocations_are_ready_and_infer_on_the_served_model(client: TestClient) -> None:
    assert client.get("/ping").status_code == 200
    body = infer_body([[1, 2, 3]])
    direct = client.post(INFER, json=body)
    via_sagemaker = client.post("/invocations", json=body)
    assert via_sagemaker.status_code == 200 and top_items(via_sagemaker.json()) == top_items(direct.json())


def test_serve_argument_is_sagemakers_container_contract(monkeypatch: pytest.MonkeyPatch) -> None:
    from workloads.serving.__main__ import parse_args

    monkeypatch.setenv("GPUPLANE_MODEL_NAME", "recs")
    args = parse_args(["serve"])
    assert (str(args.model_dir), args.port, args.host, args.model_name) == ("/opt/ml/model", 8080, "0.0.0.0", "recs")
    assert parse_args(["serve", "--max-batch-size", "4"]).max_batch_size == 4
