"""Reliability: reproducible runs, concurrent runs on one SQLite store, interrupted and failed runs,
and model files that are not the project's own or were changed after training."""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, call_cli, files_under, forked_process, run_cli, store_client
from warm import WarmProcess

pytestmark = pytest.mark.e2e


def demo_runs(home: Path) -> list:
    client = store_client(home)
    experiment = client.get_experiment_by_name("demo")
    return client.search_runs([experiment.experiment_id]) if experiment else []


def printed_id(prefix: str, output: str) -> str:
    """The run id a command printed after ``prefix`` at the start of a line ("" when it printed none)."""
    found = re.search(rf"^{prefix}([0-9a-f]{{32}})", output, re.MULTILINE)
    return found[1] if found else ""


def versions(home: Path, name: str = "policy-topics-demo") -> list[int]:
    return sorted(int(v.version) for v in store_client(home).search_model_versions(f"name='{name}'"))


def train_process(home: Path, *overrides: str) -> WarmProcess:
    return forked_process(["train", *overrides], home)


def split_texts(home: Path, fingerprint: str) -> dict[str, list[tuple[str, int]]]:
    import pandas as pd

    folder = home / "data" / "processed" / f"demo-{fingerprint}"
    return {f.stem: list(pd.read_parquet(f)[["text", "label"]].itertuples(index=False, name=None))
            for f in sorted(folder.glob("*.parquet"))}


def test_same_config_and_seed_give_the_same_split_metrics_and_predictions_in_two_processes(demo_store, home):
    again = run_cli(["train", "tracking.register_as=topics-demo"], home)
    assert again.returncode == 0, again.stderr
    first, second = store_client(demo_store.home).get_run(demo_store.run_id), demo_runs(home)[0]
    fingerprint = first.data.params["data.fingerprint"]
    assert second.data.params["data.fingerprint"] == fingerprint
    splits = split_texts(home, fingerprint)
    assert set(splits) == {"train", "validation", "test", "conflicts"}  # conflicts: the rows cleaning left out
    assert splits == split_texts(demo_store.home, fingerprint)
    scores = {k: v for k, v in first.data.metrics.items() if k.startswith(("val_", "test_"))}
    assert scores and {k: second.data.metrics[k] for k in scores} == scores
    seeds = ["--input", str(REPO / "seeds"), "--explain", "3", "--model", "models:/topics-demo/1"]
    answers = [call_cli(["predict", *seeds], h).stdout for h in (demo_store.home, home)]
    assert answers[0] and answers[0] == answers[1]
    tags = second.data.tags
    assert {"versions.scikit-learn", "versions.numpy", "versions.python", "mlflow.source.git.commit",
            "git_dirty"} <= set(tags)


def test_rerun_repeats_a_logged_run_and_reports_that_the_metrics_match(demo_store):
    result = call_cli(["rerun", demo_store.run_id], demo_store.home)
    assert result.returncode == 0, result.stderr
    assert f"metrics match (run {demo_store.run_id} re-run as" in result.stdout
    assert "test_macro_f1" in result.stdout and "<- differs" not in result.stdout
    rerun_id = result.stdout.rsplit("re-run as ", 1)[1].split(")")[0]
    assert store_client(demo_store.home).get_run(rerun_id).data.tags["rerun_of"] == demo_store.run_id
    missing = call_cli(["rerun", "0" * 32], demo_store.home)
    assert missing.returncode == 2 and missing.stderr.startswith(f"error: no run {'0' * 32}")


def test_a_training_and_a_two_worker_joblib_sweep_at_once_on_a_new_sqlite_store_all_land(empty_home):
    """Three writers at once (a command and the sweep's two workers), and two commands creating the store
    at the same moment, on a store none of them has built. Each fits in its own process (no fit workers):
    the writers are what is tested."""
    processes = [train_process(empty_home, "seed=0", "fit_processes=1"),
                 train_process(empty_home, "--multirun", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2",
                               "seed=10,11", "fit_processes=1")]
    outcomes = [(p.wait(timeout=900), *p.communicate()) for p in processes]
    assert [code for code, _, _ in outcomes] == [0] * 2, [err.splitlines()[-3:] for _, _, err in outcomes]
    runs = demo_runs(empty_home)
    assert {r.info.status for r in runs} == {"FINISHED"}
    # Every run a process reported is in the store, and nothing else: the training, the sweep's parent and
    # its two trials (whose own output may stay in their worker's buffer, so they are found by parent).
    training = printed_id(r"  run id +", outcomes[0][1])
    parent = printed_id("sweep: parent run ", outcomes[1][1])
    trials = {r.info.run_id for r in runs if r.data.tags.get("mlflow.parentRunId") == parent}
    assert training and len(trials) == 2
    assert {r.info.run_id for r in runs} == {training, parent} | trials, [(r.info.run_id, r.info.run_name)
                                                                         for r in runs]
    assert len(versions(empty_home)) == 3


def interrupt_mid_run(home: Path, sig: signal.Signals) -> tuple[int, str]:
    """Start training and send ``sig`` once the MLflow run is open. Five-fold cross-validation keeps the run
    busy for seconds after that line, so a loaded machine's slow reader still interrupts it mid-run."""
    proc = train_process(home, "evaluation.cv_folds=5")
    for line in proc.stdout:
        if "start MLflow run" in line:
            proc.send_signal(sig)
            break
    proc.wait(timeout=120)
    return proc.returncode, proc.stderr.read()


def test_ctrl_c_or_sigterm_mid_run_marks_it_killed_and_leaves_nothing_half_done(home):
    for sig in (signal.SIGINT, signal.SIGTERM):
        code, stderr = interrupt_mid_run(home, sig)
        assert code == 130 and stderr.strip().splitlines() == [
            "error: interrupted (the MLflow run, if one was open, is marked KILLED)"], stderr
    assert [r.info.status for r in demo_runs(home)] == ["KILLED", "KILLED"]
    assert versions(home) == []  # no registered model from an unfinished run
    assert not [p for p in files_under(home / "data") if any(part.startswith(".") for part in p.parts)]
    after = call_cli(["train"], home)
    assert after.returncode == 0, after.stderr
    assert sorted(r.info.status for r in demo_runs(home)) == ["FINISHED", "KILLED", "KILLED"]
    assert versions(home) == [1]


def test_a_failure_mid_run_marks_it_failed_and_the_next_run_works(home):
    assert call_cli(["train"], home).returncode == 0
    artifacts = home / "mlruns" / "artifacts"
    shutil.move(artifacts, home / "artifacts-aside")
    artifacts.write_text("not a folder")  # the artifact store breaks after the run has opened
    broken = call_cli(["train"], home)
    assert broken.returncode == 1
    assert len(broken.stderr.strip().splitlines()) == 1 and "marked FAILED" in broken.stderr
    artifacts.unlink()
    shutil.move(home / "artifacts-aside", artifacts)
    assert call_cli(["train"], home).returncode == 0
    assert sorted(r.info.status for r in demo_runs(home)) == ["FAILED", "FINISHED", "FINISHED"]
    assert versions(home) == [1, 2]


def test_model_files_changed_after_training_are_refused(demo_store):
    model_id = demo_store.model_uri.removeprefix("models:/")
    vocabulary = next((demo_store.home / "mlruns" / "artifacts" / "models" / model_id).rglob("vocabularies.json"))
    original = vocabulary.read_text()
    terms = json.loads(original)
    terms["word"][0] = "tampered"
    try:
        vocabulary.write_text(json.dumps(terms))
        result = call_cli(["predict", "--model", demo_store.registered, "farm bill"], demo_store.home)
    finally:
        vocabulary.write_text(original)
    assert result.returncode == 2
    assert "model files differ from the digest recorded at training" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_model_that_is_not_the_projects_own_is_refused(demo_store, tmp_path):
    import mlflow
    from sklearn.dummy import DummyClassifier

    home = tmp_path / "foreign"
    shutil.copytree(demo_store.home, home)
    mlflow.set_tracking_uri(f"sqlite:///{home / 'mlruns' / 'mlflow.db'}")
    mlflow.set_registry_uri(f"sqlite:///{home / 'mlruns' / 'mlflow.db'}")
    experiment = mlflow.create_experiment("foreign", artifact_location=(tmp_path / "artifacts").as_uri())
    with mlflow.start_run(experiment_id=experiment):
        info = mlflow.sklearn.log_model(DummyClassifier().fit([[0], [1]], [0, 1]), name="model",
                                        registered_model_name="foreign", serialization_format="skops",
                                        skops_trusted_types=[])
    result = call_cli(["predict", "--model", "models:/foreign/1", "farm bill"], home)
    assert result.returncode == 2 and "is not a policy-topics model" in result.stderr, result.stderr
    assert info.model_uri


def test_loading_skops_does_not_import_torch_and_trusts_the_same_scikit_learn_types():
    pytest.importorskip("torch")  # the case that matters: torch installed (the embeddings extra)
    probe = ("import sys, json; {imp}; import skops.io._trusted_types as t; "
             "print(json.dumps([sorted(t.SKLEARN_ESTIMATOR_TYPE_NAMES), 'torch' in sys.modules]))")
    ours, plain = (subprocess.run([sys.executable, "-c", probe.format(imp=imp)], capture_output=True, text=True,
                                  check=True).stdout
                   for imp in ("from policy_topics.models.persistence import _skops_io; _skops_io()",
                               "import skops.io"))
    (our_types, our_torch), (plain_types, plain_torch) = json.loads(ours), json.loads(plain)
    assert our_types == plain_types and len(our_types) > 100
    assert plain_torch and not our_torch
