"""The MLflow registry round trip on MLflow's real local backend (SQLite + a directory), and the
evaluate / promote steps run in-process against it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("mlflow")
torch = pytest.importorskip("torch")

from workloads.data.generate import GenerateConfig, generate  # noqa: E402
from workloads.model import ModelConfig, NextItemModel  # noqa: E402
from workloads.pipeline import evaluate, promote  # noqa: E402
from workloads.pipeline.registry import CHALLENGER, CHAMPION, Registry, RegistryError, local_tracking_uri  # noqa: E402
from workloads.training.export import export_model  # noqa: E402


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("loop")
    generate(root / "data", GenerateConfig(users=200, items=120, days=3, seed=0))
    torch.manual_seed(0)
    model = NextItemModel(ModelConfig(num_items=120, block_size=16, n_layer=1, n_head=2, n_embd=16))
    export_model(model, root / "export", list(range(1, 121)), {"loss": 4.5, "steps": 3})
    return {"root": root, "data": root / "data", "export": root / "export"}


def test_register_alias_load_by_alias_gives_identical_artifacts(world, tmp_path):
    reg = Registry(local_tracking_uri(tmp_path), tmp_path / "artifacts")
    assert reg.tracking_uri.startswith("sqlite:///") and (tmp_path / "mlflow.db").is_file()
    run_id = reg.log_evaluation(world["export"], {"ndcg_at_10": 0.25}, {"data": "day-1"}, {"stage": "test"})
    assert reg.run_metrics(run_id) == {"ndcg_at_10": 0.25}
    v = reg.register("recommender", run_id)
    assert v.version == "1" and v.run_id == run_id
    reg.set_alias("recommender", CHAMPION, v.version)
    # a second client on the same files sees the same registry (nothing is held in memory)
    again = Registry(local_tracking_uri(tmp_path))
    got = again.by_alias("recommender", CHAMPION)
    assert got.version == "1" and CHAMPION in got.aliases
    out = again.download("recommender", got.version, tmp_path / "download")
    original = sorted(p.name for p in world["export"].iterdir())
    assert sorted(p.name for p in out.iterdir()) == original
    for name in original:
        assert (out / name).read_bytes() == (world["export"] / name).read_bytes(), name
    assert (tmp_path / "artifacts").is_dir()  # artifacts went to the directory, not next to the DB


def test_an_unknown_alias_names_the_aliases_that_are_set(world, tmp_path):
    reg = Registry(local_tracking_uri(tmp_path))
    v = reg.register("recommender", reg.log_evaluation(world["export"], {"ndcg_at_10": 0.1}))
    reg.set_alias("recommender", CHALLENGER, v.version)
    with pytest.raises(RegistryError, match=r"has no alias 'champion' \(aliases set: challenger→v1\)"):
        reg.by_alias("recommender", CHAMPION)
    assert reg.find_alias("recommender", CHAMPION) is None
    with pytest.raises(RegistryError, match="alias 'prod' is not one the model loop uses; use one of champion"):
        reg.by_alias("recommender", "prod")


def test_evaluate_then_promote_first_model_then_reject_an_equal_one(world, tmp_path, capsys):
    uri = local_tracking_uri(tmp_path)
    args = ["--model-dir", str(world["export"]), "--data", str(world["data"]), "--tracking-uri", uri,
            "--artifact-root", str(tmp_path / "artifacts")]
    assert evaluate.main(args) == 0
    first = json.loads(capsys.readouterr().out)
    assert first["version"] == "1" and first["champion_version"] is None
    assert set(first["metrics"]) >= {"hit_rate_at_10", "ndcg_at_10", "baseline_hit_rate_at_10", "baseline_ndcg_at_10"}
    # an untrained model: the gate must judge it on real numbers; force a known outcome with the margin
    decision_file = tmp_path / "decision.json"
    code = promote.main(["--tracking-uri", uri, "--output", str(decision_file)])
    decision = json.loads(decision_file.read_text())
    expected = first["metrics"]["ndcg_at_10"] > first["metrics"]["baseline_ndcg_at_10"]
    assert decision["promoted"] is expected and code == (0 if expected else 3), decision["reason"]
    reg = Registry(uri)
    if not expected:  # make it the champion by hand so that the second round has one
        reg.set_alias("recommender", CHAMPION, "1")
    capsys.readouterr()
    # the same weights again: champion re-scored on the same data, equal figures, rejected
    assert evaluate.main(args) == 0
    second = json.loads(capsys.readouterr().out)
    assert second["version"] == "2" and second["champion_version"] == "1"
    assert second["metrics"]["champion_ndcg_at_10"] == pytest.approx(second["metrics"]["ndcg_at_10"])
    assert promote.main(["--tracking-uri", uri, "--output", str(decision_file)]) == 3
    decision = json.loads(decision_file.read_text())
    assert not decision["promoted"] and "the champion stays" in decision["reason"]
    assert reg.by_alias("recommender", CHAMPION).version == "1"
    assert reg.get_version("recommender", "2").tags["gate"] == "rejected"


def test_promote_bad_input_is_exit_2_with_one_message(tmp_path, capsys):
    uri = local_tracking_uri(tmp_path)
    assert promote.main(["--tracking-uri", uri, "--margin", "-1"]) == 2
    assert "margin=-1.0 must be a finite number ≥ 0" in capsys.readouterr().err
    assert promote.main(["--tracking-uri", uri, "--challenger-alias", "latest"]) == 2
    assert "alias 'latest' is not one the model loop uses" in capsys.readouterr().err
    assert promote.main(["--tracking-uri", uri]) == 2  # nothing registered yet
    assert "has no alias 'challenger' (aliases set: none)" in capsys.readouterr().err


def test_evaluate_refuses_a_model_that_does_not_know_the_data_items(world, tmp_path, capsys):
    small = NextItemModel(ModelConfig(num_items=50, block_size=16, n_layer=1, n_head=2, n_embd=16))
    export_model(small, tmp_path / "small", list(range(1, 51)), {})
    code = evaluate.main(["--model-dir", str(tmp_path / "small"), "--data", str(world["data"]),
                          "--tracking-uri", local_tracking_uri(tmp_path)])
    assert code == 2
    assert "item vocabulary changed; retrain from scratch" in capsys.readouterr().err
