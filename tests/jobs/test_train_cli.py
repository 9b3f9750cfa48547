"""`policy-topics train` run as a user runs it: real processes, real files, a real MLflow store."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest
from conftest import REPO, call_cli, files_under, home_with_store, run_cli, store_client

pytestmark = pytest.mark.e2e


def mlflow_runs(home: Path, experiment: str) -> list:
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=(uri := f"sqlite:///{home / 'mlruns' / 'mlflow.db'}"), registry_uri=uri)
    exp = client.get_experiment_by_name(experiment)
    return [] if exp is None else client.search_runs([exp.experiment_id])


def run_count(home: Path) -> int:
    db = home / "mlruns" / "mlflow.db"
    if not db.exists():
        return 0
    with sqlite3.connect(db) as con:
        return con.execute("select count(*) from runs").fetchone()[0]


@pytest.fixture(scope="module")
def uscongress_run(tmp_path_factory, mirror, built_store):
    home = home_with_store(tmp_path_factory.mktemp("uscongress-home"), built_store)
    result = call_cli(["train", "data=uscongress"], home, mirror)
    assert result.returncode == 0, result.stderr
    runs = mlflow_runs(home, "uscongress")
    assert len(runs) == 1
    return home, result, runs[0]


def test_uscongress_reaches_the_accuracy_of_the_literature(uscongress_run):
    _, _, run = uscongress_run
    assert run.info.status == "FINISHED"
    assert run.data.metrics["test_macro_f1"] >= 0.74
    assert run.data.metrics["test_accuracy"] >= 0.76
    assert run.data.metrics["test_n_docs"] > 800


def test_terminal_shows_stages_metrics_run_id_and_the_ui_command(uscongress_run):
    home, result, run = uscongress_run
    out = result.stdout
    for stage in ("prepare data", "fit", "evaluate test", "log model"):
        assert stage in out
    assert run.info.run_id in out
    assert f"mlflow ui --backend-store-uri sqlite:///{home / 'mlruns' / 'mlflow.db'}" in out
    ui_program = out.split("MLflow UI", 1)[1].split()[0]
    assert Path(ui_program).is_file() or ui_program == "mlflow"
    assert f"{run.data.metrics['test_macro_f1']:.3f}" in out


def test_run_records_config_params_dataset_git_and_artifacts(uscongress_run):
    import mlflow

    home, _, run = uscongress_run
    params = run.data.params
    assert params["data.name"] == "uscongress" and params["model.name"] == "linearsvc"
    assert params["features.word.ngram_range"] == "[1, 2]"
    assert params["data.source_sha256"].startswith("4a0967ae")
    assert run.data.tags["mlflow.source.git.commit"]
    inputs = {d.dataset.name: d for d in run.inputs.dataset_inputs}
    assert set(inputs) == {"uscongress-train", "uscongress-validation", "uscongress-test"}
    assert inputs["uscongress-train"].dataset.digest == params["data.fingerprint"]
    assert "cran/RTextTools" in inputs["uscongress-train"].dataset.source
    client = mlflow.MlflowClient(tracking_uri=(uri := f"sqlite:///{home / 'mlruns' / 'mlflow.db'}"), registry_uri=uri)
    names = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"config.yaml", "report.md", "metrics.json", "per_topic_test.csv", "confusion_test.csv",
            "confusion_test.png", "top_ngrams.csv"} <= names
    local = Path(client.download_artifacts(run.info.run_id, "confusion_test.png", str(home)))
    assert local.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and local.stat().st_size > 20_000
    report = Path(client.download_artifacts(run.info.run_id, "report.md", str(home))).read_text()
    assert "| 3 | Health |" in report and "International Affairs" in report
    config = Path(client.download_artifacts(run.info.run_id, "config.yaml", str(home))).read_text()
    assert "label_column: major" in config


def test_logged_model_loads_and_answers_with_topic_names(uscongress_run):
    import mlflow
    import pandas as pd

    home, _, run = uscongress_run
    mlflow.set_tracking_uri(f"sqlite:///{home / 'mlruns' / 'mlflow.db'}")
    model = mlflow.pyfunc.load_model(run.data.tags["model_uri"])
    texts = ["A bill to provide grants to States for training of nurses in rural hospitals",
             "To authorize appropriations for the Coast Guard and the Navy shipbuilding program"]
    out = model.predict(pd.DataFrame({"text": [*texts, "   "]}), params={"top_k": 2, "explain": 3})
    assert list(out.columns) == ["topic", "code", "probability", "status", "top_topics", "explanation"]
    assert out["topic"].tolist()[0] == "Health" and out["code"].tolist()[0] == 3
    assert out["probability"].iloc[:2].between(0, 1).all()
    assert out["status"].tolist() == ["coded", "coded", "empty"]
    assert len(out["top_topics"].iloc[0]) == 2 and len(out["explanation"].iloc[0]) == 3
    assert out["explanation"].iloc[0][0]["ngram"] == "hospitals"  # the word that says Health
    strict = model.predict(pd.DataFrame({"text": texts}), params={"threshold": 0.999})
    assert strict["status"].tolist() == ["uncertain", "uncertain"]
    assert model.metadata.signature.inputs.input_names() == ["text"]


def test_default_command_trains_the_demo_corpus_offline(empty_home):
    result = run_cli(["train"], empty_home)  # no data mirror, no network
    assert result.returncode == 0, result.stderr
    runs = mlflow_runs(empty_home, "demo")
    assert len(runs) == 1 and runs[0].data.metrics["test_macro_f1"] > 0.5
    assert "data=demo" in result.stdout
    run = runs[0]
    assert re.fullmatch(r"demo-linearsvc-word\+char-[0-9a-f]{4}", run.info.run_name)
    assert run.data.tags["mlflow.note.content"].startswith(
        f"linearsvc on word+char features, trained on demo: test macro-F1 {run.data.metrics['test_macro_f1']:.3f}")
    timings = [m for m in run.data.metrics if m.startswith("timing/")]
    assert "timing/prepare_data_s" in timings and not any(m.startswith("time_") for m in run.data.metrics)
    assert result.stderr == ""  # no MLflow, tqdm or multiprocessing chatter on a normal run
    assert all(line.startswith(("policy-topics train:", "  ")) or not line.strip()
               for line in result.stdout.splitlines()), result.stdout
    assert_agreement_and_review_sheets(empty_home, run, result.stdout)


def assert_agreement_and_review_sheets(home: Path, run, out: str) -> None:
    """Kappa and alpha against the given codes (test split and its auto-coded share) as metrics, on the terminal
    and in the model card; the review sheets as run artifacts with their manifests."""
    import pandas as pd

    metrics = run.data.metrics
    for name in ("test_kappa", "test_alpha", "test_autocoded_kappa", "test_autocoded_alpha"):
        assert metrics[f"{name}_low"] <= metrics[name] <= metrics[f"{name}_high"]
    assert metrics["test_kappa"] < metrics["test_accuracy"]
    assert metrics["test_autocoded_n_docs"] < metrics["test_n_docs"]
    kappa = f"{metrics['test_kappa']:.3f} (95% CI {metrics['test_kappa_low']:.3f}-{metrics['test_kappa_high']:.3f})"
    docs = int(metrics["test_n_docs"])
    assert f"agreement with the given codes on the test split ({docs} docs): kappa {kappa}" in out
    client = store_client(home)
    card, report = (Path(client.download_artifacts(run.info.run_id, name)).read_text()
                    for name in ("model_card.md", "report.md"))
    assert "## Agreement with the given codes" in card and f"| {metrics['test_kappa']:.3f} |" in card
    assert "## Agreement with the given codes" in report
    folder = Path(client.download_artifacts(run.info.run_id, "review"))
    assert sorted(p.name for p in folder.iterdir()) == [
        "confident_mistakes.csv", "confident_mistakes.manifest.json", "conflicting_duplicates.csv",
        "conflicting_duplicates.manifest.json"]
    mistakes = pd.read_csv(folder / "confident_mistakes.csv", encoding="utf-8-sig")
    assert list(mistakes.columns) == ["id", "text", "code", "given_code", "given_topic", "model_code", "model_topic",
                                      "model_probability", "reason"]
    assert len(mistakes) > 0 and mistakes["code"].isna().all()
    assert (mistakes["given_code"] != mistakes["model_code"]).all()
    assert mistakes["model_probability"].is_monotonic_decreasing
    assert f"    review/confident_mistakes.csv: {len(mistakes)} most confident mistakes on the test split\n" in out
    assert f"mlflow artifacts download -r {run.info.run_id} -a review" in out


def test_verbose_shows_what_the_libraries_print(home):
    result = run_cli(["train", "-v", "features=word"], home)
    assert result.returncode == 0, result.stderr
    assert "Successfully registered model 'policy-topics-demo'" in result.stdout + result.stderr


def test_multirun_sweeps_models_into_child_runs_of_one_parent_run(home):
    result = call_cli(["train", "--multirun", "model=complementnb,ridge", "features=word",
                       "tracking.log_model=false"], home)
    assert result.returncode == 0, result.stderr
    runs = mlflow_runs(home, "demo")
    parents = [r for r in runs if r.data.tags.get("policy_topics.role") == "sweep"]
    children = [r for r in runs if r not in parents]
    assert len(parents) == 1 and parents[0].data.params["sweeper"] == "basic"
    assert sorted(r.data.params["model.name"] for r in children) == ["complementnb", "ridge"]
    assert {r.data.tags["mlflow.parentRunId"] for r in children} == {parents[0].info.run_id}
    assert parents[0].data.tags["best_run_id"] in {r.info.run_id for r in children}


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


GOOD_ROWS = "".join(f'"Irrigation subsidies for growers, part {i}",4\n"Hospital staffing rules, part {i}",3\n'
                    for i in range(12))


def bad_inputs(tmp: Path) -> dict[str, tuple[list[str], str]]:
    """Each case: the command's overrides and a phrase its one-line error must contain."""
    good = write(tmp / "good.csv", "body,topic\n" + GOOD_ROWS)
    latin = write(tmp / "latin.csv", "body,topic\n" + GOOD_ROWS + '"Caf\u00e9 tax credit",1\n', "latin-1")
    empty = write(tmp / "empty.csv", 'body,topic\n"   ",3\n"",4\n')
    rare = write(tmp / "rare.csv", "body,topic\n" + GOOD_ROWS + '"Wildfire crews",27\n"Forest fire",27\n')
    odd = write(tmp / "odd.csv", "body,topic\n" + GOOD_ROWS + '"Moon base zoning",42\n')
    nothing = write(tmp / "nothing.csv", "")
    header = write(tmp / "header.csv", "body,topic\n\n")
    subtopics = write(tmp / "subtopics.csv", "body,topic\n" + GOOD_ROWS.replace(",4\n", ",401\n"))
    typo = write(tmp / "typo.csv", "body,topic\n" + GOOD_ROWS + '"Clinic waiting times",Helth\n')
    local = ["data=local", "data.text_column=body", "data.label_column=topic"]
    return {
        "empty file": ([*local, f"data.path={nothing}"], "nothing.csv is empty"),
        "header only": ([*local, f"data.path={header}"], "header.csv has a header (body, topic) but no rows"),
        "subtopic codes refused": ([*local, f"data.path={subtopics}", "data.unknown_labels=error"],
                                   "12 labels are CAP subtopic codes (401, ...)"),
        "misspelled topic": ([*local, f"data.path={typo}"], "label 'Helth' (line 26) is neither a CAP code nor a "
                                                            "topic name (1 such rows); did you mean 'Health'?"),
        "missing file": ([*local, f"data.path={tmp / 'nope.csv'}"], "data file not found"),
        "missing column": ([*local, f"data.path={good}", "data.text_column=title"],
                           "text column 'title' not found in good.csv; columns found: body, topic"),
        "bad encoding": ([*local, f"data.path={latin}"], "line 26 (byte 0xe9 at column 5) is not valid utf-8"),
        "nothing left": ([*local, f"data.path={empty}"], "nothing left after cleaning"),
        "rare topic": ([*local, f"data.path={rare}"], "27 Fires has 2"),
        "unknown label": ([*local, f"data.path={odd}", "data.unknown_labels=error"],
                          "label codes outside the CAP taxonomy: 42 (1 docs)"),
        "unknown key": (["model.estimator.C_value=3"], "unknown config key 'model.estimator.C_value'"),
        "unknown option": (["model=xgboost"], "unknown option model=xgboost; available model options: complementnb"),
        "no mirror offline": (["data=uscongress", "data.url=http://127.0.0.1:9/USCongress.csv.gz"],
                              "POLICY_TOPICS_DATA_MIRROR"),
        "tracking down": (["tracking.uri=http://127.0.0.1:9"], "tracking server http://127.0.0.1:9 is not reachable"),
        "shared base config": (["data=cap_laws"], "data.country is required here and has no value; add "
                                                  "data.country=... to the command, or pick a config that sets it"),
    }


CASES = ["empty file", "header only", "subtopic codes refused", "misspelled topic",
         "missing file", "missing column", "bad encoding", "nothing left", "rare topic", "unknown label",
         "unknown key", "unknown option", "no mirror offline", "tracking down", "shared base config"]


@pytest.mark.parametrize("case", CASES)
def test_bad_input_gets_one_line_and_leaves_nothing_behind(case, home, tmp_path):
    cases = bad_inputs(tmp_path)
    assert sorted(cases) == sorted(CASES)
    overrides, phrase = cases[case]
    result = call_cli(["train", *overrides], home)
    assert result.returncode in (2, 3), result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ") and phrase in lines[0]
    assert "Traceback" not in result.stdout + result.stderr
    assert files_under(home / "data") == []
    assert run_count(home) == 0


def test_subtopic_codes_and_float_codes_train_as_major_topics_and_cleaning_is_summed_up(home, tmp_path):
    rows = GOOD_ROWS.replace(",4\n", ",401\n").replace(",3\n", ",3.0\n")
    conflicting = '"Farm credit act",4\n"Farm credit act",1\n'
    data = write(tmp_path / "coded.csv", "body,topic\n" + rows + '"   ",3\n"Bridge repairs",\n' + conflicting)
    result = call_cli(["train", "data=local", f"data.path={data}", "data.text_column=body",
                       "data.label_column=topic", "prep.test_size=0.2", "tracking.log_model=false"], home)
    assert result.returncode == 0, result.stderr
    assert "coded.csv: 12 labels are CAP subtopic codes (401, ...): each is coded as its major topic" in result.stderr
    cleaning = ("    cleaning: 28 rows read; 24 kept; 1 empty texts dropped; 1 missing labels dropped; 2 rows of 1 "
                "texts with conflicting labels dropped; 12 subtopic codes coded as their major topic")
    assert cleaning in result.stdout.splitlines()
    assert "Unknown topic" not in result.stdout
    assert "    review/conflicting_duplicates.csv: 2 copies of 1 text with conflicting codes\n" in result.stdout
    sheet = Path(store_client(home).download_artifacts(mlflow_runs(home, "local")[0].info.run_id,
                                                       "review/conflicting_duplicates.csv"))
    copies = sheet.read_text(encoding="utf-8-sig").splitlines()[1:]
    assert [line.split(",")[3] for line in copies] == ["4", "1"]  # given_code of each copy, in file order
    assert "this copy is at line 28 of " in copies[0]
    assert "coded 1 Macroeconomics (line 29) and 4 Agriculture (line 28)" in copies[0]


def small_corpus(tmp_path: Path, per_topic: int = 11) -> Path:
    """The first ``per_topic`` documents of each topic of the demo corpus (written for this project)."""
    import pandas as pd

    demo = pd.read_csv(REPO / "data" / "demo" / "cap_demo.csv")
    small = demo.groupby("major", group_keys=False).head(per_topic)
    path = tmp_path / "small.csv"
    small.to_csv(path, index=False)
    return path


def test_a_small_corpus_is_evaluated_by_cross_validation_and_the_summary_says_what_helps(home, tmp_path):
    corpus = small_corpus(tmp_path)
    result = call_cli(["train", "data=local", f"data.path={corpus}", "data.label_column=major"], home)
    assert result.returncode == 0, result.stderr
    assert ("warning: small corpus: the held-out splits would hold validation 1.1 and test 2.2 documents per topic, "
            "too few to measure anything; evaluating by stratified 5-fold cross-validation on all 231 documents "
            "instead") in result.stderr
    assert "5-fold" in result.stdout and "cv_macro_f1" not in result.stderr
    assert "to do better (small corpus): pool a coded reference corpus in the same language" in result.stdout
    assert "+data@pool.ref=uscongress +pool.ref.weight=0.3" in result.stdout
    assert "or add sentence embeddings (the embeddings extra): features=word_char_minilm" in result.stdout
    run = mlflow_runs(home, "local")[0]
    assert run.data.params["evaluation.cv_folds"] == "5" and "cv_macro_f1_mean" in run.data.metrics
    assert not any(k.startswith(("val_", "test_")) for k in run.data.metrics)
    card = store_client(home).download_artifacts(run.info.run_id, "model_card.md")
    assert "**Small corpus**: the held-out splits would hold" in Path(card).read_text()


def test_a_small_corpus_keeps_the_split_the_command_line_chose_and_still_warns(home, tmp_path):
    corpus = small_corpus(tmp_path)
    result = call_cli(["train", "data=local", f"data.path={corpus}", "data.label_column=major", "prep.test_size=0.2",
                       "tracking.log_model=false"], home)
    assert result.returncode == 0, result.stderr
    assert "read its scores as rough (evaluation.cv_folds=5 gives intervals)" in result.stderr
    assert "test_macro_f1" in mlflow_runs(home, "local")[0].data.metrics
