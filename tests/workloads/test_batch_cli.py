"""``python -m workloads.batch``'s bad input: one message per problem naming the field and the fix, exit 2,
nothing written (workloads/batch/__main__.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.workloads.test_serving_support import one_torch_thread, write_model_dir  # noqa: F401 (a fixture)
from workloads.batch.__main__ import main
from workloads.batch.taskenv import PLATFORMS

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def no_task_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for p in PLATFORMS.values():
        for var in (p.index_var, p.count_var, p.run_var):
            monkeypatch.delenv(var, raising=False)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_model_dir(tmp_path_factory.mktemp("model"))


def errors(capsys: pytest.CaptureFixture[str]) -> list[str]:
    return [line for line in capsys.readouterr().err.splitlines() if line.startswith("error: ")]


def test_a_task_without_a_task_index_says_where_it_comes_from(tmp_path: Path, model_dir: Path, no_task_env: None,
                                                              capsys: pytest.CaptureFixture[str]):
    code = main(["--data", str(tmp_path), "--output", str(tmp_path / "out"), "--model-dir", str(model_dir)])
    [message] = errors(capsys)
    assert code == 2
    assert "CLOUD_RUN_TASK_INDEX, AWS_BATCH_JOB_ARRAY_INDEX, JOB_COMPLETION_INDEX is set" in message
    assert "--task-index N --task-count M" in message
    assert not (tmp_path / "out").exists()


def test_every_problem_is_reported_at_once(tmp_path: Path, no_task_env: None, capsys: pytest.CaptureFixture[str]):
    code = main(["run", "--data", "ftp9://bucket/events", "--output", "nope://x", "--model-dir", str(tmp_path / "m"),
                 "--tasks", "0", "--chunk-items", "0"])
    found = errors(capsys)
    assert code == 2
    assert any("--data='ftp9://bucket/events': the scheme 'ftp9' is unknown" in e and "s3://, gs://" in e
               for e in found), found
    assert any("--output='nope://x': the scheme 'nope' is unknown" in e for e in found), found
    assert any(f"--model-dir {tmp_path / 'm'}: not a training export" in e and "--export-dir" in e for e in found)
    assert "error: --tasks 0: must be at least 1" in found
    assert "error: --chunk-items 0: must be at least 1" in found
    assert len(found) == 5, found


def test_a_bad_fault_drill_names_the_format(tmp_path: Path, model_dir: Path, capsys: pytest.CaptureFixture[str]):
    from workloads.data.generate import GenerateConfig, generate

    generate(tmp_path / "data", GenerateConfig(users=5, items=10, days=1, seed=0))
    code = main(["run", "--data", str(tmp_path / "data"), "--output", str(tmp_path / "out"), "--model-dir",
                 str(model_dir), "--tasks", "2", "--kill", "one:two"])
    assert code == 2
    assert errors(capsys) == ["error: --kill 'one:two': expected TASK:CHUNKS[:SIGNAL], e.g. 1:2:KILL or 0:1:TERM"]


def test_the_module_runs_as_a_program(tmp_path: Path):
    r = subprocess.run([sys.executable, "-m", "workloads.batch", "task", "--help"], cwd=ROOT, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0 and "--task-index" in r.stdout and "--platform" in r.stdout


@pytest.mark.slow  # imports the image checker (the plan engine) and walks the import closure: ~15 s on 2 busy cores
def test_the_training_image_holds_the_batch_workload_and_its_packages(tmp_path: Path):
    """BatchJob runs `python -m workloads.batch` in gpuplane-training (entrypoint overridden): every file of
    its import closure is COPYed and every package it imports is installed (tests/workloads/test_images.py);
    without the COPY of workloads/batch the same check fails."""
    from tests.workloads.test_images import Spec, check, readme_images

    spec = Spec("ghcr.io/gpuplane/training:0.1.0", ("python", "-m", "workloads.batch"),
                ("task", "--data", "s3://b/events/", "--output", "s3://b/out", "--model-dir", "/model"), "batch")
    images = readme_images()
    assert check(spec, images) == []
    training = (ROOT / images["gpuplane-training"]["Dockerfile"]).read_text()
    (tmp_path / "Dockerfile").write_text("\n".join(line for line in training.splitlines() if "workloads/batch" not in line))
    images["gpuplane-training"] = {**images["gpuplane-training"], "Dockerfile": str(tmp_path / "Dockerfile")}
    assert any("workloads/batch/task.py" in p and "does not COPY" in p for p in check(spec, images))


@pytest.mark.usefixtures("one_torch_thread")
def test_the_bare_command_takes_every_input_from_a_batchjob_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                  no_task_env: None):
    """What a BatchJob runs: ``python -m workloads.batch`` with no flags, every input in the contract's
    variables (workloads/batch/contract.py); a triggered run's object replaces the dataset, the manifest
    lives where GPUPLANE_MANIFEST_URI says, the run id and count come from GPUPLANE_RUN_ID / _TASK_COUNT."""
    import json
    import shutil

    from workloads.batch import contract
    from workloads.data.generate import GenerateConfig, generate

    generate(tmp_path / "gen", GenerateConfig(users=12, items=50, days=1, seed=0))
    (tmp_path / "in").mkdir()
    for name in ("a.parquet", "b.parquet"):
        shutil.copy(tmp_path / "gen" / "events.parquet", tmp_path / "in" / name)
    model = write_model_dir(tmp_path / "model", num_items=50, block_size=8)
    env = {contract.DATASET_URI: str(tmp_path / "in"), contract.OBJECT_URI: str(tmp_path / "in" / "b.parquet"),
           contract.OBJECT_GENERATION: "", contract.OUTPUT_URI: str(tmp_path / "out"),
           contract.MANIFEST_URI: str(tmp_path / "markers"), contract.MODEL_URI: str(model), contract.MODEL_VERSION: "7",
           contract.REPROCESS: "false", contract.TASK_COUNT: "1", contract.RUN_ID: "recs-scores-x7k2q",
           contract.CHECKPOINT_SECONDS: "600", "JOB_COMPLETION_INDEX": "0"}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert main([]) == 0
    summary = json.loads((tmp_path / "out" / "7" / "recs-scores-x7k2q" / "_SUCCESS").read_text())
    assert [Path(o).name for o in summary["objects"]] == ["b.parquet"] and summary["tasks"] == 1
    assert sorted(p.suffix for p in (tmp_path / "markers" / "7").iterdir()) == [".claim", ".done"]  # one object
    assert not (tmp_path / "out" / "_manifest").exists()


def test_a_bad_batchjob_variable_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, model_dir: Path,
                                          capsys: pytest.CaptureFixture[str]):
    from workloads.batch import contract

    monkeypatch.setenv(contract.REPROCESS, "maybe")
    code = main(["--data", str(tmp_path), "--output", str(tmp_path / "out"), "--model-dir", str(model_dir),
                 "--task-index", "0", "--task-count", "1", "--run-id", "r"])
    assert code == 2
    assert errors(capsys) == ["error: GPUPLANE_REPROCESS_ON_NEW_MODEL_VERSION='maybe' is not a boolean; use true or "
                              "false (BatchJob's reprocess_on_new_model_version sets it)"]


def test_a_bucket_model_export_is_copied_to_a_local_cache_once():
    """``--model-dir`` / GPUPLANE_MODEL_URI may be a bucket location (fsspec's memory:// stands in for s3:// / gs://)."""
    import uuid

    import fsspec

    from workloads.batch.store import StoreError, local_dir

    root = f"memory://models-{uuid.uuid4().hex[:8]}/recs"
    fs = fsspec.filesystem("memory")
    fs.pipe_file(f"{root}/config.json", b"{}")
    with pytest.raises(StoreError, match=r"--model-dir='memory://.*': model.safetensors is not there"):
        local_dir(root, "--model-dir", ("model.safetensors", "config.json"), ("items.json",))
    fs.pipe_file(f"{root}/model.safetensors", b"weights")
    got = local_dir(root, "--model-dir", ("model.safetensors", "config.json"), ("items.json",))
    assert sorted(p.name for p in got.iterdir()) == ["config.json", "model.safetensors"]
    assert local_dir(root, "--model-dir", ("model.safetensors", "config.json"), ("items.json",)) == got  # cached
    fs.pipe_file(f"{root}/model.safetensors", b"new weights")  # a replaced export is fetched again
    again = local_dir(root, "--model-dir", ("model.safetensors", "config.json"), ("items.json",))
    assert again != got and (again / "model.safetensors").read_bytes() == b"new weights"


def test_a_triggered_run_says_when_its_object_was_replaced_since_the_event(tmp_path: Path):
    from workloads.batch.__main__ import _event_note
    from workloads.batch.dataset import list_objects

    obj = tmp_path / "a.parquet"
    obj.write_bytes(b"x")
    now = list_objects(str(obj), "--data")[0].generation  # mtime-<ns>-size-1
    env = {"GPUPLANE_OBJECT_URI": str(obj), "GPUPLANE_OBJECT_GENERATION": now}
    assert _event_note(env, str(obj)) == f"triggered by {obj} (generation {now})"
    stale = {**env, "GPUPLANE_OBJECT_GENERATION": "mtime-1-size-1"}
    assert _event_note(stale, str(obj)) == (f"triggered by {obj} (generation mtime-1-size-1), replaced since ({now}): "
                                            "processing the current one")
    assert _event_note(env, "--data given on the command line") is None
