"""`policy-topics rerun` of a run trained on a local file, from another folder than the training's."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import REPO, call_cli, store_client

pytestmark = pytest.mark.e2e


def train_from(folder: Path, home: Path) -> str:
    import pandas as pd

    demo = pd.read_csv(REPO / "data" / "demo" / "cap_demo.csv")
    demo.groupby("major", group_keys=False).head(20).to_csv(folder / "coded.csv", index=False)
    result = call_cli(["train", "data=local", "data.path=coded.csv", "data.label_column=major", "features=word",
                       "tracking.log_model=false"], home, cwd=folder)
    assert result.returncode == 0, result.stderr
    return result.stdout.split("run id", 1)[1].split()[0]


def test_a_run_on_a_relative_path_reruns_from_any_folder_and_a_changed_file_is_refused(home, tmp_path):
    training, elsewhere = tmp_path / "project", tmp_path / "elsewhere"
    training.mkdir()
    elsewhere.mkdir()
    run_id = train_from(training, home)
    recorded = store_client(home).get_run(run_id).data.params["data.resolved_path"]
    assert recorded == str((training / "coded.csv").resolve())

    again = call_cli(["rerun", run_id], home, cwd=elsewhere)
    assert again.returncode == 0, again.stderr
    assert f"metrics match (run {run_id} re-run as" in again.stdout

    with open(training / "coded.csv", "a") as handle:
        handle.write("A bill on rural broadband grants,17,bill\n")
    changed = call_cli(["rerun", run_id], home, cwd=elsewhere)
    assert changed.returncode == 2
    assert changed.stderr.strip().splitlines() == [
        f"error: {recorded} changed since run {run_id} was trained on it (sha256 "
        + changed.stderr.split("(sha256 ", 1)[1].strip()]
    assert "so a re-run would not repeat it; restore the file, or train anew" in changed.stderr
    runs_before = len(store_client(home).search_runs([store_client(home).get_experiment_by_name("local")
                                                      .experiment_id]))
    (training / "coded.csv").unlink()
    gone = call_cli(["rerun", run_id], home, cwd=elsewhere)
    assert gone.returncode == 2 and "which is not there any more; put the file back" in gone.stderr
    assert len(store_client(home).search_runs([store_client(home).get_experiment_by_name("local")
                                               .experiment_id])) == runs_before  # refused before any run
