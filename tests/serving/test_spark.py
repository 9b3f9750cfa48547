"""``policy-topics predict --engine spark``: the logged model through ``mlflow.pyfunc.spark_udf`` on real
PySpark in local mode, answer for answer the same as the batch command; bad input refused in one line
before any Spark job. One Spark session for the module (a JVM start costs seconds)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pyspark  # noqa: F401  (the dev extra installs it: a missing PySpark fails here, never skips)
import pytest
from conftest import call_cli

from policy_topics.serving.spark import SparkSettings, input_files

DEMO = Path(__file__).resolve().parents[2] / "data" / "demo" / "cap_demo.csv"


@pytest.fixture(scope="module")
def spark():
    from policy_topics.serving.spark import session

    active = session(SparkSettings(master="local[2]", conf={"spark.ui.enabled": False,
                                                            "spark.ui.showConsoleProgress": False}))
    yield active
    active.stop()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """Two Parquet files of demo texts, an empty text and a nonsense one, with a clashing ``topic`` column."""
    folder = tmp_path_factory.mktemp("spark-input") / "corpus"
    folder.mkdir()
    texts = [*pd.read_csv(DEMO)["text"].tolist()[:70], "", "zzqx vrrk plonth"]
    frame = pd.DataFrame({"doc": [f"d{i}" for i in range(len(texts))], "text": texts,
                          "topic": ["given"] * len(texts)})
    frame.iloc[:40].to_parquet(folder / "part-a.parquet")
    frame.iloc[40:].to_parquet(folder / "part-b.parquet")
    (folder / "_SUCCESS").write_text("")
    return folder


def value(cell: object) -> object:
    """A cell as a comparable Python value: missing (None, NaN, NA) as None, numbers rounded to 6 places."""
    if cell is None or (not isinstance(cell, str) and pd.isna(cell)):
        return None
    return round(float(cell), 6) if isinstance(cell, int | float) else cell


@pytest.mark.e2e
def test_spark_predictions_match_the_batch_command_row_by_row(spark, corpus, demo_store, tmp_path):
    out = tmp_path / "coded"
    result = call_cli(["predict", "--engine", "spark", "--model", demo_store.registered, "--input", str(corpus),
                       "--output", str(out), "--master", "local[2]"], demo_store.home)
    assert result.returncode == 0, result.stderr
    assert "72 predictions from models:/topics-demo/1 on Spark local[2]" in result.stderr
    ours = pd.read_parquet(out).sort_values("doc").reset_index(drop=True)
    assert list(ours.columns) == ["doc", "text", "topic_input", "topic", "code", "probability", "status",
                                  "top_topics"]
    batch = []
    for name in ("part-a", "part-b"):
        target = tmp_path / f"{name}.jsonl"
        done = call_cli(["predict", "--model", demo_store.registered, "--input", str(corpus / f"{name}.parquet"),
                         "--output", str(target)], demo_store.home)
        assert done.returncode == 0, done.stderr
        batch += [json.loads(line) for line in target.read_text().splitlines()]
    expected = pd.DataFrame(batch).sort_values("doc").reset_index(drop=True)
    assert len(ours) == len(expected) == 72
    for got, want in zip(ours.to_dict("records"), expected.to_dict("records"), strict=True):
        assert [value(got[k]) for k in ("doc", "status", "topic", "code", "probability")] == \
            [value(want[k]) for k in ("doc", "status", "topic", "code", "probability")]
        assert [dict(t) for t in got["top_topics"]] == want["top_topics"]
    statuses = set(ours["status"])
    assert {"coded", "empty"} <= statuses and ours.loc[ours["text"] == "", "probability"].isna().all()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".coded")]  # the temp folder was renamed


@pytest.mark.e2e
@pytest.mark.parametrize(("case", "message"), [
    ("missing input", "--input {tmp}/nowhere: no such file, folder or matching files"),
    ("no text column", "column 'body' not found in part-a.parquet; columns found: doc, text, topic"),
    ("not parquet", "notes.parquet is not a readable Parquet file"),
    ("unknown model", "model 'models:/no-such-model@champion' not found in"),
    ("output exists", "--output {tmp}/taken exists; remove it or choose a new folder"),
    ("no java", "no Java found (PySpark needs Java 17 or later)"),
])
def test_spark_prediction_refuses_bad_input_in_one_line_before_any_job(corpus, demo_store, tmp_path, case, message):
    source, model, column, extra = str(corpus), demo_store.registered, "text", {}
    if case == "missing input":
        source = str(tmp_path / "nowhere")
    elif case == "no text column":
        column = "body"
    elif case == "not parquet":
        source = str(tmp_path / "bad")
        shutil.copytree(corpus, source)
        (Path(source) / "notes.parquet").write_text("not parquet")
    elif case == "unknown model":
        model = "no-such-model"
    elif case == "output exists":
        (tmp_path / "taken").mkdir()
    else:
        (tmp_path / "bin").mkdir()
        extra = {"PATH": str(tmp_path / "bin"), "JAVA_HOME": ""}
    output = tmp_path / ("taken" if case == "output exists" else "coded")
    result = call_cli(["predict", "--engine", "spark", "--model", model, "--input", source, "--column", column,
                       "--output", str(output)], demo_store.home, **extra)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message.format(tmp=tmp_path) in lines[0], result.stderr
    assert case == "output exists" or not output.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".coded")]


def test_spark_refuses_batch_only_flags_and_needs_an_output_folder(home):
    for flags, message in [(["some text"], "does not take texts as arguments"),
                           (["--input", "x", "--output", "y", "--explain", "2"], "does not take --explain"),
                           (["--input", "x", "--output", "y", "--segment", "paragraphs"], "--segment paragraphs"),
                           (["--input", "x"], "needs --input PARQUET_FILE|FOLDER|GLOB and --output FOLDER")]:
        result = call_cli(["predict", "--engine", "spark", *flags], home)
        assert result.returncode != 0 and message in result.stderr, result.stderr


def test_the_master_comes_from_config_unless_given():
    assert SparkSettings.load().master == "local[*]" and SparkSettings.load().local
    cluster = SparkSettings.load("spark://head:7077")
    assert cluster.master == "spark://head:7077" and not cluster.local
    assert SparkSettings.load().conf["spark.sql.execution.arrow.maxRecordsPerBatch"] > 0


def test_input_folders_and_globs_give_their_parquet_files_and_skip_hidden_ones(corpus, tmp_path):
    names = [p.name for p in input_files(str(corpus))]
    assert names == ["part-a.parquet", "part-b.parquet"]
    assert [p.name for p in input_files(str(corpus / "part-*.parquet"))] == names
    assert input_files(str(corpus / "part-b.parquet")) == [corpus / "part-b.parquet"]


def test_only_the_spark_module_imports_pyspark():
    import ast

    import policy_topics

    root = Path(policy_topics.__file__).parent
    importers = sorted({str(path.relative_to(root)) for path in root.rglob("*.py")
                       for node in ast.walk(ast.parse(path.read_text()))
                       if isinstance(node, ast.Import | ast.ImportFrom)
                       and any((name or "").split(".")[0] == "pyspark" for name in
                               ([a.name for a in node.names] if isinstance(node, ast.Import) else [node.module]))})
    assert importers == ["serving/spark.py"]
