"""Sweeps and the leaderboard, run as a user runs them: real Optuna sweeps on the demo corpus through the
joblib and Ray launchers, a real MLflow store, the preset trained again, the leaderboard on top."""

from __future__ import annotations

import itertools
import json
import os
import uuid
from pathlib import Path

import pytest
from conftest import REPO, call_cli, forked_cli, home_with_store

pytestmark = pytest.mark.e2e

SWEEP = ["train", "-m", "hparams_search=optuna", "hydra.sweeper.n_trials=4", "hydra.sweeper.n_jobs=2"]


def client(home: Path):
    import mlflow

    return mlflow.MlflowClient(tracking_uri=f"sqlite:///{home / 'mlruns' / 'mlflow.db'}")


def sweep_runs(home: Path) -> tuple[list, dict[str, list]]:
    """The parent runs of the demo experiment (oldest first) and each one's children."""
    c = client(home)
    exp = c.get_experiment_by_name("demo")
    runs = c.search_runs([exp.experiment_id], order_by=["attributes.start_time ASC"])
    parents = [r for r in runs if r.data.tags.get("policy_topics.role") == "sweep"]
    children = {p.info.run_id: [r for r in runs if r.data.tags.get("mlflow.parentRunId") == p.info.run_id]
                for p in parents}
    return parents, children


def one_error_line(result) -> str:
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, result.stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


@pytest.fixture(scope="module")
def preset_name():
    name = f"test_sweep_{uuid.uuid4().hex[:8]}"
    yield name
    (REPO / "conf" / "experiment" / f"{name}.yaml").unlink(missing_ok=True)


@pytest.fixture(scope="module")
def swept(tmp_path_factory, preset_name, built_store):
    """One home, the same seeded sweep run twice (the first also writes a preset)."""
    home = home_with_store(tmp_path_factory.mktemp("sweep-home"), built_store)
    first = call_cli([*SWEEP, f"hparams_search.write_preset={preset_name}"], home)
    assert first.returncode == 0, first.stderr
    second = call_cli(SWEEP, home)
    assert second.returncode == 0, second.stderr
    return home, first, second


def test_a_sweep_is_one_parent_run_with_a_child_per_trial_and_the_best_marked(swept):
    home, first, _ = swept
    parents, children = sweep_runs(home)
    parent = parents[0]
    trials = children[parent.info.run_id]
    assert len(trials) == 4 and all(t.info.status == "FINISHED" for t in trials)
    assert sorted(t.info.run_name for t in trials) == ["trial-0", "trial-1", "trial-2", "trial-3"]
    assert parent.info.status == "FINISHED" and parent.data.params["sweeper"] == "optuna"
    assert parent.data.params["launcher"] == "joblib" and parent.data.params["seed"] == "42"
    assert parent.data.params["search.model"].startswith("choice(linearsvc")
    assert parent.data.params["search.linearsvc.model.estimator.C"].startswith("tag(log, interval(")
    best = max(trials, key=lambda t: t.data.metrics["val_macro_f1"])
    assert parent.data.tags["best_run_id"] == best.info.run_id
    assert parent.data.metrics["best_val_macro_f1"] == best.data.metrics["val_macro_f1"]
    marked = [t.info.run_id for t in trials if t.data.tags.get("policy_topics.best_trial") == "true"]
    assert marked == [best.info.run_id]
    names = {a.path for a in client(home).list_artifacts(parent.info.run_id)}
    assert {"best_experiment.yaml", "trials.csv", "optimization_results.yaml"} <= names
    assert f"best trial   {best.data.tags['policy_topics.trial']}: val_macro_f1" in first.stdout


def test_trials_never_look_at_the_test_split(swept):
    home, _, _ = swept
    _, children = sweep_runs(home)
    for trial in (t for runs in children.values() for t in runs):
        assert "val_macro_f1" in trial.data.metrics
        assert not any(m.startswith("test_") for m in trial.data.metrics)
        assert trial.data.params["refit"] == "False" and trial.data.params["evaluate_test"] == "False"


def test_trials_run_in_parallel_worker_processes(swept):
    home, _, _ = swept
    parents, children = sweep_runs(home)
    trials = children[parents[0].info.run_id]
    spans = sorted((t.info.start_time, t.info.end_time) for t in trials)
    assert any(later[0] < earlier[1] for earlier, later in itertools.pairwise(spans))


def test_rerunning_the_sweep_makes_a_new_parent_and_the_seed_repeats_the_trials(swept):
    home, _, _ = swept
    parents, children = sweep_runs(home)
    assert len(parents) == 2
    first, second = (children[p.info.run_id] for p in parents)
    assert len(first) == len(second) == 4
    assert not {t.info.run_id for t in first} & {t.info.run_id for t in second}

    def trials(runs):
        return sorted(([o for o in json.loads(r.data.tags["policy_topics.overrides"]) if "hparams_search" not in o],
                       round(r.data.metrics["val_macro_f1"], 6)) for r in runs)

    assert trials(first) == trials(second)


def test_the_best_trial_becomes_a_preset_that_reproduces_it(swept, preset_name):
    home, _, _ = swept
    preset = REPO / "conf" / "experiment" / f"{preset_name}.yaml"
    text = preset.read_text()
    assert text.startswith("# @package _global_") and "override /model:" in text
    assert "hparams_search" not in text.split("\n", 3)[-1] and "tracking" not in text
    parents, _ = sweep_runs(home)
    sweep_dir = Path(parents[0].data.tags["policy_topics.sweep_dir"])
    assert (sweep_dir / "best_experiment.yaml").read_text() == text
    result = call_cli(["train", f"experiment={preset_name}", "tracking.log_model=false"], home)
    assert result.returncode == 0, result.stderr
    c = client(home)
    runs = c.search_runs([c.get_experiment_by_name("demo").experiment_id])
    (again,) = [r for r in runs if not {"mlflow.parentRunId", "policy_topics.role"} & set(r.data.tags)]
    assert again.data.metrics["val_macro_f1"] == pytest.approx(parents[0].data.metrics["best_val_macro_f1"])
    assert "test_macro_f1" in again.data.metrics and again.data.params["refit"] == "True"


def test_leaderboard_ranks_a_sweep_by_validation_macro_f1(swept):
    home, _, _ = swept
    parents, children = sweep_runs(home)
    result = call_cli(["leaderboard", "--sweep", "latest"], home)
    assert result.returncode == 0, result.stderr
    assert parents[1].info.run_id in result.stdout.splitlines()[0]
    rows = [line.split() for line in result.stdout.splitlines()[2:]]
    ids = [row[1] for row in rows]
    expected = sorted(children[parents[1].info.run_id], key=lambda t: -t.data.metrics["val_macro_f1"])
    assert ids == [t.info.run_id for t in expected]
    assert rows[0][4] == "*" and "model" in result.stdout.splitlines()[1]
    assert "word.ngram_range" in result.stdout.splitlines()[1]


def test_leaderboard_diffs_the_configs_of_two_runs(swept):
    home, _, _ = swept
    parents, children = sweep_runs(home)
    a, b = children[parents[0].info.run_id][:2]
    result = call_cli(["leaderboard", "--diff", a.info.run_id[:8], b.info.run_id], home)
    assert result.returncode == 0, result.stderr
    differing = [k for k in set(a.data.params) | set(b.data.params) if a.data.params.get(k) != b.data.params.get(k)]
    assert "model.name" in differing or "features.word.min_df" in differing
    config = result.stdout.split("config differences:", 1)[1].split("metrics:", 1)[0]
    for key in differing:
        assert key in config
    assert "val_macro_f1" in result.stdout.split("metrics:", 1)[1]


def test_leaderboard_plots_per_topic_f1_and_logs_it_to_the_sweep(swept, tmp_path):
    home, _, _ = swept
    parents, _ = sweep_runs(home)
    out = tmp_path / "top.png"
    result = call_cli(["leaderboard", "--sweep", parents[0].info.run_id, "--top", "3", "--plot", str(out)], home)
    assert result.returncode == 0, result.stderr
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 20_000
    logged = {a.path for a in client(home).list_artifacts(parents[0].info.run_id, "leaderboard")}
    assert logged == {"leaderboard/per_topic_f1.png", "leaderboard/ranking.csv"}


def test_experiment_leaderboard_logs_its_plot_to_a_leaderboard_run_it_never_ranks(swept, tmp_path):
    home, _, _ = swept
    out = tmp_path / "experiment.png"
    for _ in range(2):
        result = call_cli(["leaderboard", "--experiment", "demo", "--top", "20", "--plot", str(out)], home)
        assert result.returncode == 0, result.stderr
    c = client(home)
    runs = c.search_runs([c.get_experiment_by_name("demo").experiment_id])
    boards = [r for r in runs if r.data.tags.get("policy_topics.role") == "leaderboard"]
    assert len(boards) == 2 and all(b.info.status == "FINISHED" for b in boards)
    rows, _, footer = result.stdout.partition("plot written to")
    ranked = [line.split()[1] for line in rows.splitlines()[2:]]
    assert f"logged to run {boards[-1].info.run_id}" in footer or f"logged to run {boards[0].info.run_id}" in footer
    assert {b.info.run_id for b in boards}.isdisjoint(ranked)
    assert len(ranked) == len([r for r in runs if "policy_topics.role" not in r.data.tags])


@pytest.mark.parametrize(("args", "phrase"), [
    (["--experiment", "nope"], "unknown experiment 'nope'; experiments: Default, demo"),
    (["--sweep", "0123abcd"], "sweep '0123abcd' not found; sweeps: "),
    (["--metric", "val_f2"], "no run here logged metric 'val_f2'; metrics: "),
    (["--diff", "fffff", "00000"], "run 'fffff' not found in experiment 'demo'"),
    (["--plot", "ranking.jpg"], "--plot needs a .png file in an existing folder"),
])
def test_leaderboard_bad_input_gets_one_line_naming_what_exists(swept, args, phrase):
    home, _, _ = swept
    assert phrase in one_error_line(call_cli(["leaderboard", *args], home))


@pytest.mark.parametrize(("args", "phrase"), [
    (["train", "hparams_search=optuna"], "hparams_search runs a sweep: add --multirun (-m)"),
    (["train", "-m", "hparams_search=grid"], "unknown option hparams_search=grid; available hparams_search options: "
                                             "optuna"),
    (["train", "-m", "hparams_search=optuna", "hydra.sweeper.params.model='choice(linearsvc,xgboost)'"],
     "hparams_search: unknown model xgboost; available model options: complementnb, linearsvc"),
    (["train", "-m", "hparams_search=optuna", "prep.val_size=0"], "set prep.val_size above 0"),
    (["train", "-m", "hparams_search=optuna", "hparams_search.write_preset=../x"],
     "hparams_search.write_preset must be a file name"),
])
def test_a_search_that_cannot_run_as_asked_is_refused_before_any_run(empty_home, args, phrase):
    assert phrase in one_error_line(call_cli(args, empty_home))
    assert not (empty_home / "mlruns").exists() and not (empty_home / "outputs").exists()


def test_a_two_trial_sweep_runs_on_a_local_ray_instance_into_the_same_store(home):
    try:
        import ray  # noqa: F401
    except ImportError:
        if os.environ.get("CI"):
            pytest.fail("ray is not installed: `pip install -e '.[dev]'` installs it (the [ray] extra)")
        pytest.skip("ray not installed (pip install -e '.[ray]')")
    result = forked_cli([*SWEEP[:3], "hydra.sweeper.n_trials=2", "hydra/launcher=ray_cluster",
                         "hydra.launcher.ray.init.num_cpus=2"], home)
    assert result.returncode == 0, result.stderr
    assert "Started a local Ray instance" in result.stderr
    parents, children = sweep_runs(home)
    assert len(parents) == 1 and parents[0].data.params["launcher"] == "ray_cluster"
    trials = children[parents[0].info.run_id]
    assert len(trials) == 2 and all(t.info.status == "FINISHED" for t in trials)
    assert parents[0].data.tags["best_run_id"] in {t.info.run_id for t in trials}
    assert all(json.loads(t.data.tags["policy_topics.overrides"]) for t in trials)


def test_a_preset_applies_the_model_choices_and_leaves_out_where_the_sweep_ran():
    import yaml

    from policy_topics.search.presets import preset_yaml

    text = preset_yaml(["model=logreg", "model.estimator.C=3.5", "features.word.ngram_range=[1,3]", "data=uscongress",
                        "hparams_search=optuna", "hparams_search.write_preset=x", "tracking.run_name=y"], "why\nhow")
    assert text.startswith("# @package _global_\n# why\n# how\n")
    assert yaml.safe_load(text) == {
        "defaults": [{"override /model": "logreg"}, {"override /data": "uscongress"}],
        "model": {"estimator": {"C": 3.5}}, "features": {"word": {"ngram_range": [1, 3]}},
    }


def test_the_search_starts_from_the_composed_values_that_lie_inside_the_space():
    from hydra import compose, initialize_config_dir

    from policy_topics.paths import config_dir, register_resolvers
    from policy_topics.search.space import _distribution, baseline

    register_resolvers()
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        cfg = compose("train", ["hparams_search=optuna", "features.word.sublinear_tf=false",
                                "features.word.min_df=7"], return_hydra_config=True)
    space = {k: _distribution(k, v) for k, v in cfg.hydra.sweeper.params.items()}
    space.update({k: _distribution(k, v) for k, v in cfg.hparams_search.models.linearsvc.items()})
    assert baseline(cfg, space) == {
        "model": "linearsvc", "features.word.ngram_range": "[1,2]", "features.word.sublinear_tf": False,
        "features.char.enabled": True, "model.estimator.C": 1.0, "model.estimator.class_weight": "balanced",
    }  # min_df 7 is outside choice(1, 2): the sampler draws it
