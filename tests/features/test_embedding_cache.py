"""The embedding cache with the real MiniLM model: training embeds each text once, however many fit
processes run; predicting writes nothing to disk."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import REPO, call_cli

pytestmark = pytest.mark.e2e


def cached_keys(folder: Path) -> list[str]:
    keys: list[str] = []
    for shard in sorted(folder.rglob("*.npz")):
        with np.load(shard) as data:
            keys += [str(k) for k in data["keys"].tolist()]
    return keys


def test_training_embeds_each_text_once_and_predicting_keeps_nothing(home, tmp_path):
    pytest.importorskip("torch")
    import pandas as pd

    demo = pd.read_csv(REPO / "data" / "demo" / "cap_demo.csv")
    demo.groupby("major", group_keys=False).head(14).to_csv(tmp_path / "small.csv", index=False)
    trained = call_cli(["train", "data=local", f"data.path={tmp_path / 'small.csv'}", "data.label_column=major",
                        "features=word_char_minilm", "prep.test_size=0.2", "fit_processes=2"], home)
    assert trained.returncode == 0, trained.stderr
    assert "embed texts" in trained.stdout and "294 texts, each once" in trained.stdout
    cache = home / "data" / "cache" / "embeddings"
    keys = cached_keys(cache)
    assert len(keys) == len(set(keys)) == 294  # the parallel fit and refit embedded nothing again
    files = sorted(p.name for p in cache.rglob("*"))

    new = [f"A bill on rural broadband grants for county {i}" for i in range(40)]
    coded = call_cli(["predict", "--model", "policy-topics-local/1", *new], home)
    assert coded.returncode == 0, coded.stderr
    assert sorted(p.name for p in cache.rglob("*")) == files  # the coded texts are not kept on disk
