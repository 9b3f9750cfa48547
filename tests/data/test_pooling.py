"""Pooled training: another coded corpus's rows of the same topics join every fit with a sample weight;
its texts that the main dataset holds never do, and every score stays on the main dataset's splits."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import REPO, call_cli, compose

from policy_topics.data.pooling import pooled_rows, prepare_pool
from policy_topics.data.prep import prepare_dataset
from policy_topics.errors import ConfigError, PrepError
from policy_topics.models.pipeline import fit_pipeline

ZEBRA = ["Zebra crossings to be repainted on every municipal road near schools",
         "Grants for zebra crossings and pedestrian islands on rural routes"]
RELIGION = "Parish choirs gather for the annual cathedral festival"  # 31: a US media code the demo lacks


def write_pool(path: Path, demo_text: str, demo_label: int) -> Path:
    rows = [(ZEBRA[0], 10), (ZEBRA[1], 10), (RELIGION, 31), (demo_text, demo_label)]
    pd.DataFrame(rows, columns=["headline", "code"]).to_csv(path, index=False)
    return path


@pytest.fixture
def pooled(tmp_path: Path, monkeypatch) -> tuple[dict, object]:
    """The demo corpus prepared, and a four-row pool file: two transport rows, one row of a topic the demo
    does not have, and one of the demo's own texts."""
    monkeypatch.setenv("POLICY_TOPICS_HOME", str(tmp_path))
    main_cfg = compose("data=demo")
    main = prepare_dataset(main_cfg["data"], main_cfg["prep"], main_cfg["paths"])
    own = main.splits["test"].iloc[0]
    pool_file = write_pool(tmp_path / "pool.csv", own["text"], int(own["label"]))
    cfg = compose("data=demo", "+data@pool.extra=local", f"pool.extra.path={pool_file}",
                  "pool.extra.text_column=headline", "pool.extra.label_column=code", "+pool.extra.weight=2")
    return cfg, main


def test_only_rows_of_the_main_topics_join_and_never_a_text_of_the_main_dataset(pooled):
    cfg, main = pooled
    (part,) = prepare_pool(cfg["pool"], cfg["prep"], cfg["paths"], main)
    # A four-row file is pooled whole: no split, no minimum per topic.
    assert part.rows["text"].tolist() == ZEBRA and part.rows["label"].tolist() == [10, 10]
    assert part.rows["weight"].tolist() == [2.0, 2.0]
    assert (part.other_topics, part.overlap) == (1, 1)
    assert part.summary == "pool extra: 2 rows x 2 (dropped 1 of other topics, 1 texts the main dataset has)"


def test_pooled_rows_teach_the_model_in_proportion_to_their_weight(pooled):
    cfg, main = pooled
    rows = pooled_rows(prepare_pool(cfg["pool"], cfg["prep"], cfg["paths"], main))
    train = main.splits["train"]

    def transport(pool: pd.DataFrame | None) -> tuple[float, int]:
        """The probability of Transportation for an unseen phrase, and the topic predicted."""
        pipeline = fit_pipeline(cfg["features"], cfg["model"], train, pool=pool)
        proba = pipeline.predict_proba(["zebra crossings"])[0]
        return float(proba[list(pipeline.classes_).index(10)]), int(pipeline.classes_[proba.argmax()])

    (alone, _), (light, _), (heavy, topic) = transport(None), transport(rows.assign(weight=0.2)), transport(rows)
    assert alone < light < heavy and topic == 10


@pytest.mark.parametrize("weight", ["0", "-1", "heavy", "inf"])
def test_a_weight_that_is_not_a_positive_number_is_refused_with_the_fix(pooled, weight):
    cfg, main = pooled
    entry = {**cfg["pool"]["extra"], "weight": weight}
    with pytest.raises(ConfigError) as caught:
        prepare_pool({"extra": entry}, cfg["prep"], cfg["paths"], main)
    assert str(caught.value) == (f"pool.extra.weight must be a number above 0, not {weight!r}; "
                                 "e.g. pool.extra.weight=0.3")


def test_a_pool_without_the_main_topics_or_without_a_dataset_is_refused(pooled, tmp_path):
    cfg, main = pooled
    only_religion = tmp_path / "religion.csv"
    pd.DataFrame({"headline": [RELIGION], "code": [31]}).to_csv(only_religion, index=False)
    entry = {**cfg["pool"]["extra"], "path": str(only_religion), "name": "religion"}
    with pytest.raises(PrepError, match=r"^pool.extra \(religion\) has no rows of the topics of demo's training"):
        prepare_pool({"extra": entry}, cfg["prep"], cfg["paths"], main)
    with pytest.raises(ConfigError, match=r"^pool.bare is not a dataset; add one with \+data@pool.bare=DATASET"):
        prepare_pool({"bare": {"weight": 1}}, cfg["prep"], cfg["paths"], main)


@pytest.mark.e2e
def test_train_with_a_pool_logs_it_and_scores_only_the_main_dataset(pooled, home):
    import mlflow

    cfg, main = pooled
    pool_args = ["+data@pool.extra=local", f"pool.extra.path={cfg['pool']['extra']['path']}",
                 "pool.extra.text_column=headline", "pool.extra.label_column=code"]
    result = call_cli(["train", *pool_args, "+pool.extra.weight=0.5", "tracking.log_model=false"], home)
    assert result.returncode == 0, result.stderr
    assert "pool extra: 2 rows x 0.5" in result.stdout
    fit_line = next(line for line in result.stdout.splitlines() if re.match(r"\s+fit\s+\d", line))
    assert fit_line.endswith(f"{len(main.splits['train']):,} docs + 2 pooled")
    uri = f"sqlite:///{home / 'mlruns' / 'mlflow.db'}"
    client = mlflow.MlflowClient(tracking_uri=uri)
    (run,) = client.search_runs([client.get_experiment_by_name("demo").experiment_id])
    assert run.data.params["pool.extra.weight"] == "0.5" and run.data.params["pool.extra.rows_used"] == "2"
    contexts = {i.dataset.name: {t.key: t.value for t in i.tags}["mlflow.data.context"]
                for i in run.inputs.dataset_inputs}
    assert contexts == {"demo-train": "train", "demo-validation": "validation", "demo-test": "test",
                        "local-pool": "pool"}
    assert run.data.metrics["test_n_docs"] == len(main.splits["test"])  # scores: the demo's own test split

    folds = call_cli(["train", *pool_args, "+pool.extra.weight=0.5", "evaluation.cv_folds=3",
                     "tracking.log_model=false"], home)
    assert folds.returncode == 0, folds.stderr
    lines = {line.split()[0] + " " + line.split()[1]: line for line in folds.stdout.splitlines() if line.strip()}
    assert lines["fit 3"].endswith(" docs + 2 pooled each") and " docs + 2 pooled, " in lines["fit on"]

    streamed = call_cli(["train", *pool_args, "experiment=out_of_core", "data=demo"], home)
    assert streamed.returncode == 2 and streamed.stderr.strip().splitlines() == [
        "error: pooled datasets (pool.*) cannot join streamed (out-of-core) training; drop the pool.* entries "
        "or train in memory"]
    assert len(client.search_runs([run.info.experiment_id])) == 2  # no run for the refused command
    assert np.isfinite(run.data.metrics["test_macro_f1"])


@pytest.mark.e2e
def test_evaluate_refuses_to_score_a_model_on_the_dataset_it_pooled(tmp_path, home):
    half = tmp_path / "half.csv"
    pd.read_csv(REPO / "data" / "demo" / "cap_demo.csv").iloc[::2].to_csv(half, index=False)
    trained = call_cli(["train", "data=local", f"data.path={half}", "data.label_column=major", "+data@pool.rest=demo",
                       "+pool.rest.weight=0.5"], home)
    assert trained.returncode == 0, trained.stderr
    assert "rows x 0.5 (dropped 0 of other topics, " in trained.stdout  # the half in the main file is dropped
    run_id = trained.stdout.split("run id", 1)[1].split()[0]
    refused = call_cli(["evaluate", "data=demo", f"model_ref={run_id}"], home)
    assert refused.returncode == 2 and refused.stderr.strip().splitlines() == [
        f"error: the model was trained with the rows of demo pooled in (pool.rest of run {run_id}), so none of "
        "them is held out; evaluate it on another dataset"]
