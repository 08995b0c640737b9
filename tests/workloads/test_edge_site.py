"""One edge site (workloads/edge/site.py) over HTTP: answers equal to the ONNX model's, digest checks,
hot reload under load without a failed request, restart from the cache with the source gone."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import numpy as np
import pytest
from starlette.testclient import TestClient

from tests.workloads.edge_support import Trained, trained  # noqa: F401 (a fixture)
from workloads.edge.site import ModelStore, Site, create_app
from workloads.training.onnx_export import Manifest, onnx_top_k, session

pytestmark = pytest.mark.slow  # the shared fixture trains and exports a model (about 25 s, once)


def model(trained: Trained, name: str) -> tuple[str, str]:  # noqa: F811
    m = Manifest.read(trained.onnx_dir / f"{name}.manifest.json")
    return (trained.onnx_dir / name).resolve().as_uri(), m.sha256


def rows(histories: np.ndarray) -> list[list[int]]:
    return [[int(v) for v in r if v] for r in histories]


def test_answers_are_the_onnx_models_top_k(trained: Trained, tmp_path: Path) -> None:  # noqa: F811
    uri, sha = model(trained, "model.onnx")
    site = Site("s", ModelStore(tmp_path / "cache"))
    with TestClient(create_app(site)) as c:
        assert c.post("/v1/infer", json={"history": [[1]]}).status_code == 503
        assert c.get("/v2/health/ready").status_code == 503 and c.get("/v2/health/live").status_code == 200
        # The EdgeDeployment component writes digests as "sha256:<hex>"; the site takes either form.
        assert c.post("/v1/model", json={"uri": uri, "sha256": f"sha256:{sha}"}).json()["source"] == "fetched"
        assert c.get("/v2/health/ready").status_code == 200
        x = trained.histories[:20]
        r = c.post("/v1/infer", json={"history": rows(x), "k": 10}).json()
        assert r["sha256"] == sha
        assert r["top_items"] == onnx_top_k(session(trained.onnx_dir / "model.onnx"), x, 10).tolist()
        assert c.post("/v1/infer", json={"history": [[1, "x"]]}).status_code == 400
        assert c.post("/v1/infer", json={"history": [[1]], "k": 0}).status_code == 400
        assert c.get("/v1/health").json()["errors"] == 3


def test_a_digest_mismatch_is_refused_and_the_model_in_service_is_kept(trained: Trained,  # noqa: F811
                                                                        tmp_path: Path) -> None:
    uri, sha = model(trained, "model.onnx")
    int8_uri, int8_sha = model(trained, "model.int8.onnx")
    site = Site("s", ModelStore(tmp_path / "cache"))
    with TestClient(create_app(site)) as c:
        c.post("/v1/model", json={"uri": uri, "sha256": sha})
        r = c.post("/v1/model", json={"uri": int8_uri, "sha256": sha[::-1]})
        assert r.status_code == 409
        assert f"expected sha256 {sha[::-1]}, the file has {int8_sha}" in r.json()["error"]
        assert r.json()["sha256"] == sha
        h = c.get("/v1/health").json()
        assert (h["model"]["sha256"], h["refused"], h["reloads"]) == (sha, 1, 1)
        assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == [f"{sha}.onnx", "current.json"], \
            "unverified bytes must not stay in the cache"
        assert c.post("/v1/model", json={"uri": uri, "sha256": "abc"}).status_code == 400


def test_hot_reloads_under_load_drop_no_request(trained: Trained, tmp_path: Path) -> None:  # noqa: F811
    models = [model(trained, "model.onnx"), model(trained, "model.int8.onnx")]
    site = Site("s", ModelStore(tmp_path / "cache"))
    codes: list[int] = []
    served: set[str] = set()
    with TestClient(create_app(site)) as c:
        c.post("/v1/model", json={"uri": models[0][0], "sha256": models[0][1]})
        stop = threading.Event()

        def load() -> None:
            while not stop.is_set():
                r = c.post("/v1/infer", json={"history": rows(trained.histories[:4])})
                codes.append(r.status_code)
                if r.status_code == 200:
                    served.add(r.json()["sha256"])

        threads = [threading.Thread(target=load) for _ in range(3)]
        for t in threads:
            t.start()
        for i in range(6):
            uri, sha = models[(i + 1) % 2]
            assert c.post("/v1/model", json={"uri": uri, "sha256": sha}).status_code == 200
        stop.set()
        for t in threads:
            t.join()
    assert codes and set(codes) == {200}, f"{len(codes)} requests, codes {sorted(set(codes))}"
    assert served == {models[0][1], models[1][1]}
    assert site.reloads == 7 and site.health()["previous"]["sha256"] == models[1][1]


def test_a_restarted_site_serves_its_last_model_from_the_cache_with_the_source_gone(trained: Trained,  # noqa: F811
                                                                                   tmp_path: Path) -> None:
    store = tmp_path / "store"
    shutil.copytree(trained.onnx_dir, store)
    uri, sha = (store / "model.int8.onnx").as_uri(), Manifest.read(store / "model.int8.onnx.manifest.json").sha256
    first = Site("s", ModelStore(tmp_path / "cache"))
    first.swap(first.load_blocking(uri, sha))
    shutil.rmtree(store)  # the link is down: the model store cannot be reached
    again = Site("s", ModelStore(tmp_path / "cache"))
    assert again.start_from_cache()
    assert again.model is not None and (again.model.sha256, again.model.source) == (sha, "cache")
    (tmp_path / "cache" / f"{sha}.onnx").write_bytes(b"garbage")  # a damaged cache is not served
    assert not Site("s", ModelStore(tmp_path / "cache")).start_from_cache()


def test_the_command_names_what_is_missing(capsys: pytest.CaptureFixture[str],
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from workloads.edge.site import main

    for var in ("EDGE_SITE", "EDGE_PORT", "EDGE_CACHE_DIR", "EDGE_MODEL_URI", "EDGE_MODEL_DIGEST"):
        monkeypatch.delenv(var, raising=False)
    assert main(["--name", "s"]) == 2
    assert "--port, --cache-dir required (or $EDGE_SITE, $EDGE_PORT, $EDGE_CACHE_DIR)" in capsys.readouterr().err
    assert main(["--name", "s", "--port", "1", "--cache-dir", "/tmp/x", "--model-uri", "file:///m.onnx"]) == 2
    assert "--model-uri and --sha256 go together" in capsys.readouterr().err
