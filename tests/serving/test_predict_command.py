"""The batch predict command, the registry commands and streaming, run against a real trained store."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys

import pandas as pd
import pytest
from conftest import REPO, TrainedStore, call_cli, cli_env, files_under

pytestmark = pytest.mark.e2e

TEXTS = ["A bill to expand Medicare coverage of hearing aids for seniors",
         "The Navy will buy three more attack submarines under the defense budget",
         "Farmers in the valley received emergency drought payments for failed wheat crops"]


def predictions(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines()]


def topics(rows: list[dict]) -> list[str]:
    return [row["topic"] for row in rows]


@pytest.fixture(scope="module")
def expected(demo_store: TrainedStore) -> list[str]:
    result = call_cli(["predict", *TEXTS], demo_store.home)
    assert result.returncode == 0, result.stderr
    rows = predictions(result.stdout)
    assert [r["id"] for r in rows] == ["arg:1", "arg:2", "arg:3"]
    assert {"id", "text", "topic", "code", "probability", "status", "top_topics", "explanation"} <= set(rows[0])
    return topics(rows)


def test_texts_as_arguments_get_the_obvious_topics(expected):
    assert expected == ["Health", "Defense", "Agriculture"]


@pytest.mark.parametrize("name, write, extra", [
    ("docs.txt", lambda p: p.write_text("\n".join(TEXTS) + "\n"), ["--lines"]),
    ("docs.csv", lambda p: pd.DataFrame({"n": [1, 2, 3], "body": TEXTS}).to_csv(p, index=False), ["--column", "body"]),
    ("docs.tsv", lambda p: pd.DataFrame({"body": TEXTS}).to_csv(p, sep="\t", index=False), ["--column", "body"]),
    ("docs.jsonl", lambda p: p.write_text("".join(json.dumps({"body": t}) + "\n" for t in TEXTS)),
     ["--column", "body"]),
    ("docs.parquet", lambda p: pd.DataFrame({"body": TEXTS}).to_parquet(p), ["--column", "body"]),
], ids=["txt", "csv", "tsv", "jsonl", "parquet"])
def test_every_input_format_gives_the_same_topics(demo_store, expected, tmp_path, name, write, extra):
    path = tmp_path / name
    write(path)
    result = call_cli(["predict", "--input", str(path), "--output-format", "jsonl", *extra], demo_store.home)
    assert result.returncode == 0, result.stderr
    assert topics(predictions(result.stdout)) == expected


def test_coded_rows_merge_back_by_id_with_the_input_columns_and_format(demo_store, expected, tmp_path):
    table = pd.DataFrame({"doc_id": ["b-17", "h-2", "s-9"], "topic": [3, 16, 4], "body": TEXTS,
                          "year": [2019, 2020, 2021]})
    table.to_csv(tmp_path / "coded.csv", index=False)
    as_csv = call_cli(["predict", "--input", str(tmp_path / "coded.csv"), "--column", "body", "--id-column",
                       "doc_id"], demo_store.home)
    assert as_csv.returncode == 0, as_csv.stderr
    rows = list(csv.DictReader(io.StringIO(as_csv.stdout)))  # CSV in, CSV out
    assert list(rows[0])[:4] == ["id", "topic_input", "year", "text"]
    assert [(r["id"], r["year"], r["topic"]) for r in rows] == list(zip(table["doc_id"], ["2019", "2020", "2021"],
                                                                       expected, strict=True))
    merged = table.merge(pd.read_csv(io.StringIO(as_csv.stdout)), left_on="doc_id", right_on="id")
    assert len(merged) == 3 and (merged["topic_input"] == merged["topic_x"]).all()

    table.to_parquet(tmp_path / "coded.parquet")
    out = tmp_path / "coded-out.parquet"
    as_parquet = call_cli(["predict", "--input", str(tmp_path / "coded.parquet"), "--column", "body", "--keep",
                           "year", "--output", str(out)], demo_store.home)
    assert as_parquet.returncode == 0, as_parquet.stderr
    back = pd.read_parquet(out)
    assert list(back.columns) == ["id", "year", "text", "topic", "code", "probability", "status", "top_topics",
                                  "explanation"]
    assert back["id"].tolist() == ["coded.parquet:1", "coded.parquet:2", "coded.parquet:3"]
    assert back["topic"].tolist() == expected and json.loads(back["top_topics"][0])[0]["topic"] == expected[0]
    by_line = call_cli(["predict", "--input", str(tmp_path / "coded.csv"), "--column", "body", "--keep", "none",
                        "--output-format", "jsonl"], demo_store.home)
    assert [set(r) - {"id", "text", "topic", "code", "probability", "status", "top_topics", "explanation"}
            for r in predictions(by_line.stdout)] == [set()] * 3
    assert [r["id"] for r in predictions(by_line.stdout)] == ["coded.csv:2", "coded.csv:3", "coded.csv:4"]


def test_a_text_file_is_one_document_unless_asked_for_one_per_line(demo_store, tmp_path):
    article = tmp_path / "article.txt"
    article.write_text("Hospitals in rural counties face staff shortages.\n\nThe bill funds nurse training.\n")
    whole = predictions(call_cli(["predict", "--input", str(article)], demo_store.home).stdout)
    assert [r["id"] for r in whole] == ["article.txt"] and whole[0]["status"] != "empty"
    lines = predictions(call_cli(["predict", "--input", str(article), "--lines"], demo_store.home).stdout)
    assert [r["id"] for r in lines] == ["article.txt:1", "article.txt:2", "article.txt:3"]
    assert lines[1]["status"] == "empty"


def test_a_folder_of_txt_files_and_stdin(demo_store, expected, tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    for number, text in enumerate(TEXTS):
        (folder / f"{number:02d}.txt").write_text(text)
    result = call_cli(["predict", "--input", str(folder)], demo_store.home)
    assert [r["id"] for r in predictions(result.stdout)] == ["00.txt", "01.txt", "02.txt"]
    assert topics(predictions(result.stdout)) == expected
    proc = subprocess.run([sys.executable, "-m", "policy_topics.cli", "predict", "--input", "-"],
                          input="\n".join(TEXTS), capture_output=True, text=True, env=cli_env(demo_store.home),
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert topics(predictions(proc.stdout)) == expected


def test_csv_output_with_explanations_and_the_seeds(demo_store, tmp_path):
    out = tmp_path / "seeds.csv"
    result = call_cli(["predict", "--input", str(REPO / "seeds"), "--explain", "3", "--top-k", "2",
                      "--output", str(out)], demo_store.home)
    assert result.returncode == 0, result.stderr
    assert f"written to {out}" in result.stderr
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert len(rows) == len(list((REPO / "seeds").glob("*.txt"))) >= 12
    for row in rows:
        assert len(json.loads(row["top_topics"])) == 2 and len(json.loads(row["explanation"])) == 3
        assert 0 <= float(row["probability"]) <= 1 and row["status"] in ("coded", "uncertain")
    by_file = {row["id"]: row for row in rows}
    assert by_file["16-defense-budget-shipbuilding.txt"]["topic"] == "Defense"
    pakistan = [t["topic"] for t in json.loads(by_file["19-pakistan-us-foreign-ministers.txt"]["top_topics"])]
    assert "International Affairs" in pakistan  # trade and diplomacy: the demo model hesitates between them


def test_models_are_chosen_by_run_id_uri_or_name(demo_store, expected):
    for reference in (demo_store.run_id, demo_store.registered, "models:/topics-demo@champion", "topics-demo"):
        result = call_cli(["predict", "--model", reference, *TEXTS], demo_store.home)
        assert result.returncode == 0, f"{reference}: {result.stderr}"
        assert topics(predictions(result.stdout)) == expected


def test_empty_lines_are_flagged_and_threshold_marks_uncertain(demo_store):
    result = call_cli(["predict", "--threshold", "0.99", TEXTS[0], ""], demo_store.home)
    assert [r["status"] for r in predictions(result.stdout)] == ["uncertain", "empty"]
    assert predictions(result.stdout)[1]["topic"] is None


def one_line_error(result) -> str:
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


def test_bad_input_is_one_line_and_leaves_no_output_file(demo_store, tmp_path):
    good = tmp_path / "docs.csv"
    pd.DataFrame({"body": TEXTS}).to_csv(good, index=False)
    broken = tmp_path / "docs.jsonl"
    broken.write_text(json.dumps({"text": TEXTS[0]}) + "\n{not json\n")
    latin = tmp_path / "latin.txt"
    latin.write_bytes("Pr\xe9sident signs the farm bill\n".encode("latin-1"))
    out = tmp_path / "out" / "pred.csv"
    out.parent.mkdir()
    cases = [
        (["--input", str(good)], "column 'text' (--column) not found in docs.csv; columns found: body"),
        (["--input", str(broken)], "docs.jsonl line 2 is not JSON"),
        (["--input", str(latin)], "set --encoding"),
        (["--input", str(tmp_path / "missing.csv")], "input not found"),
        (["--input", str(tmp_path / "out")], "no .txt files in the folder"),
        (["--threshold", "1.5", "text"], "--threshold must be between 0 and 1"),
        ([], "nothing to predict"),
        (["--model", "models:/topics-demo/7", "text"], "registered: topics-demo (versions 1; champion -> 1"),
    ]
    for args, phrase in cases:
        result = call_cli(["predict", *args, "--output", str(out)], demo_store.home)
        assert phrase in one_line_error(result), args
        assert files_under(out.parent) == [], args  # no partial output, no temp file
    fine = call_cli(["predict", "--input", str(latin), "--lines", "--encoding", "latin-1"], demo_store.home)
    assert predictions(fine.stdout)[0]["text"] == "Pr\xe9sident signs the farm bill"


def test_promote_and_models_commands(demo_store):
    listing = call_cli(["models"], demo_store.home)
    assert listing.returncode == 0, listing.stderr
    row = next(line for line in listing.stdout.splitlines() if line.strip().startswith("topics-demo"))
    assert row.split()[:4] == ["topics-demo", "1", "champion", demo_store.run_id]
    assert 0.5 < float(row.split()[4]) <= 1 and row.split()[5] == "(test)"
    assert "registered: topics-demo (versions 1" in one_line_error(call_cli(["promote", "topics-demo", "9"],
                                                                              demo_store.home))
    assert "cannot point" in one_line_error(call_cli(["promote", "no-such-model", "1"], demo_store.home))
    staged = call_cli(["promote", "topics-demo", "1", "--alias", "staging"], demo_store.home)
    assert staged.stdout.strip() == "models:/topics-demo@staging -> version 1"
    for reference in ("models:/topics-demo@staging", "topics-demo@staging", "topics-demo/1"):
        assert topics(predictions(call_cli(["predict", "--model", reference, TEXTS[1]],
                                          demo_store.home).stdout)) == ["Defense"], reference


def test_model_shorthands_name_the_registered_model():
    from policy_topics.tracking.registry import model_uri

    assert model_uri("topics@staging") == "models:/topics@staging"
    assert model_uri("topics/3") == "models:/topics/3"
    assert model_uri("topics") == "models:/topics@champion"
    assert model_uri("models:/topics@champion") == "models:/topics@champion"
    assert model_uri("runs:/abc/model") == "runs:/abc/model"


def test_several_champions_are_listed_with_the_flag_that_picks_one(demo_store, tmp_path):
    import shutil

    import mlflow

    home = tmp_path / "two"
    shutil.copytree(demo_store.home, home)
    uri = f"sqlite:///{home / 'mlruns' / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)  # (the version's source is a logged model of this store)
    client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
    client.create_registered_model("other-topics")
    source = client.get_model_version("topics-demo", "1").source
    client.create_model_version("other-topics", source, run_id=demo_store.run_id)
    client.set_registered_model_alias("other-topics", "champion", "1")
    line = one_line_error(call_cli(["predict", "some text"], home))
    assert ("several registered models have the alias 'champion'" in line
            and "other-topics, topics-demo; pick one with --model NAME, e.g. --model other-topics" in line)


def test_a_cross_validated_model_is_listed_with_its_cv_figure(home):
    trained = call_cli(["train", "features=word", "evaluation.cv_folds=3"], home)
    assert trained.returncode == 0, trained.stderr
    row = next(line for line in call_cli(["models"], home).stdout.splitlines() if "policy-topics-demo" in line)
    assert row.split()[-2:][1] == "cv)" and row.split()[-3:][1] == "(3-fold" and float(row.split()[-3]) > 0.3


def test_no_champion_is_one_line_that_says_how_to_promote(home):
    result = call_cli(["predict", "some text"], home)
    assert "no registered model has the alias 'champion'" in one_line_error(result)
    assert "policy-topics promote NAME VERSION" in result.stderr


def test_batches_are_written_while_the_input_is_still_being_read(demo_store):
    from policy_topics.serving import batch
    from policy_topics.serving.documents import Document
    from policy_topics.tracking.registry import load, resolve

    loaded = load(resolve(demo_store.registered, f"sqlite:///{demo_store.home / 'mlruns' / 'mlflow.db'}"))
    pulled = 0

    def documents():
        nonlocal pulled
        for number in range(5000):
            pulled += 1
            yield Document(str(number), TEXTS[number % 3])

    class Output(io.StringIO):
        pulled_at_first_write: int | None = None

        def write(self, text: str) -> int:
            if self.pulled_at_first_write is None and '"id"' in text:
                self.pulled_at_first_write = pulled
            return super().write(text)

    out = Output()
    count = batch.predict_stream(loaded.predictor, documents(), batch.RecordWriter(out, "jsonl"), batch_size=100,
                                 top_k=1, explain=0, threshold=None, progress=False)
    assert count == 5000 and len(out.getvalue().splitlines()) == 5000
    assert out.pulled_at_first_write == 100  # one batch in memory, not the whole input
