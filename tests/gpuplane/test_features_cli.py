"""`gpuplane features`: refuses stacks that do not materialise locally; runs the local pipeline."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from gpuplane.cli import app

runner = CliRunner()


def test_cloud_feature_stores_do_not_materialise_here():
    result = runner.invoke(app, ["features", "materialize", "--stack", "aws-dev"])
    assert result.exit_code == 2
    assert "keeps its features on 'aws'" in result.stderr


def test_unknown_stack_is_a_usage_error():
    result = runner.invoke(app, ["features", "materialize", "--stack", "nope"])
    assert result.exit_code == 2 and "no stack 'nope'" in result.stderr


@pytest.mark.slow
def test_materialize_generates_data_and_fills_the_online_store(tmp_path):
    data, repo = tmp_path / "data", tmp_path / "repo"
    result = runner.invoke(app, ["features", "materialize", "--stack", "local", "--data", str(data), "--repo-dir", str(repo), "--users", "60", "--items", "40", "--days", "2"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout[result.stdout.index("{") :])
    assert (data / "events.parquet").exists() and (repo / "feature_store.yaml").exists()
    assert 0 < summary["users"] <= 60 and summary["events"] > 0
    assert set(summary["rows"]) >= {"user_last_items", "user_activity", "item_popularity"}
    assert all(n > 0 for n in summary["rows"].values()), summary["rows"]
