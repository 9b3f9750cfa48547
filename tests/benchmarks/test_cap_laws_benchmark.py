"""The CAP law benchmark (experiments/cap_laws_benchmark.py): published prediction files scored against the
test labels, the project's fit scored once with the unseen-text figure, the table, and one-line refusals."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import f1_score

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "experiments"))

import cap_laws_benchmark as bench  # noqa: E402


def write_peer(root: Path, name: str, codes: list[str]) -> None:
    folder = root / "cap_laws" / "peers"
    folder.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"text": [f"doc {i}" for i in range(len(codes))], "annotation": codes}).to_csv(
        folder / f"XX__{name}.csv", index=False)


def test_a_peers_prediction_file_is_scored_against_the_test_labels_by_its_model_name(tmp_path):
    truth = np.array([1, 1, 3, 3, 20, 20])
    write_peer(tmp_path, "some-model", ["1", "3", "3", "3", "20", "oops"])  # an unreadable code counts as wrong
    scored = bench.peers(tmp_path, "xx", truth)
    expected = f1_score(truth, [1, 3, 3, 3, 20, -1], average="weighted", zero_division=0)
    assert list(scored) == ["some-model"]
    assert scored["some-model"]["weighted_f1"] == pytest.approx(expected)
    assert scored["some-model"]["accuracy"] == pytest.approx(4 / 6)


def test_a_prediction_file_of_another_length_is_refused(tmp_path):
    write_peer(tmp_path, "short", ["1", "3"])
    with pytest.raises(bench.BenchError, match=r"short.csv has 2 rows, the test split 3"):
        bench.peers(tmp_path, "xx", np.array([1, 3, 3]))


def test_a_fit_is_scored_once_with_the_figure_on_test_texts_not_in_training(tmp_path):
    demo = pd.read_csv(REPO / "data" / "demo" / "cap_demo.csv").rename(columns={"major": "label"})
    demo = demo.sample(frac=1.0, random_state=0).reset_index(drop=True)
    train, test = demo.iloc[:600], demo.iloc[600:700].copy()
    test.iloc[:10, test.columns.get_loc("text")] = train["text"].iloc[:10].to_numpy()  # 10 seen texts
    cfg = bench.compose(tmp_path, tmp_path, "experiment=cap_laws")
    result = bench.fit_and_score(cfg, train, test)
    assert result["test_docs"] == 100 and result["unseen_docs"] == 90 and result["train_docs"] == 600
    assert 0 < result["weighted_f1"] <= 1 and 0 < result["unseen_weighted_f1"] <= 1
    assert result["fit_s"] > 0 and result["evaluate_s"] > 0


def test_the_table_gives_a_mean_only_for_systems_scored_in_every_country():
    fig = {"weighted_f1": 0.8, "accuracy": 0.8, "macro_f1": 0.7, "unseen_weighted_f1": 0.75, "unseen_docs": 5,
           "fit_s": 1.0, "evaluate_s": 0.1, "train_docs": 50}
    results = {"split": "test", "countries": {
        "uk": {"systems": {"preset cap_laws": fig, "peer": {"weighted_f1": 0.9}}},
        "dk": {"systems": {"preset cap_laws": {**fig, "weighted_f1": 0.6}}}}}
    table = bench.markdown(results)
    assert "| preset cap_laws | 0.800 | 0.600 | 0.700 |" in table
    assert "| peer | 0.900 |  |  |" in table
    assert "| UK | preset cap_laws | 0.800 | 0.800 | 0.700 | 0.750 (5) | 1.0 | 0.10 | 50 |" in table


def test_a_missing_mirror_is_a_one_line_error_and_nothing_is_written(tmp_path, capsys):
    out = tmp_path / "out"
    assert bench.main(["--mirror", str(tmp_path), "--out", str(out)]) == 2
    assert "no CAP law files under" in capsys.readouterr().err
    assert not out.exists()
