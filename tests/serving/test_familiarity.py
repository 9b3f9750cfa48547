"""Texts unlike the training data are flagged: the bill-title model warns on newspaper headlines and stays
silent on its own unseen test split, in predict and in the server's answer (read through the data mirror)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from conftest import call_cli, home_with_store, request, running_server

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def bills(tmp_path_factory, mirror: Path, built_store: Path) -> Path:
    home = home_with_store(tmp_path_factory.mktemp("bills"), built_store)
    result = call_cli(["train", "data=uscongress", "tracking.register_as=bills"], home, mirror)
    assert result.returncode == 0, result.stderr
    assert call_cli(["promote", "bills", "1"], home).returncode == 0
    return home


def own_test_split(home: Path) -> list[str]:
    return pd.read_parquet(next((home / "data" / "processed").glob("uscongress-*/test.parquet")))["text"].tolist()


def headlines(mirror: Path, n: int) -> list[str]:
    frame = pd.read_csv(mirror / "NYTimes.csv.gz", sep=None, engine="python", encoding="latin-1")
    return frame["Title"].dropna().sample(n, random_state=0).tolist()


def test_predict_warns_on_another_kind_of_text_and_not_on_the_models_own(bills, mirror, tmp_path):
    pd.DataFrame({"text": own_test_split(bills)}).to_csv(tmp_path / "bills.csv", index=False)
    pd.DataFrame({"text": headlines(mirror, 300)}).to_csv(tmp_path / "news.csv", index=False)
    own = call_cli(["predict", "--input", str(tmp_path / "bills.csv"), "-o", str(tmp_path / "a.csv")], bills)
    assert own.returncode == 0 and "unlike the training data" not in own.stderr, own.stderr
    news = call_cli(["predict", "--input", str(tmp_path / "news.csv"), "-o", str(tmp_path / "b.csv")], bills)
    assert news.returncode == 0, news.stderr
    warning = news.stderr.strip().splitlines()[-1]
    assert warning.startswith("warning: these 300 texts are unlike the training data: ")
    assert "code a random sample of this corpus by hand" in warning


def test_the_server_says_so_in_its_answer_and_gives_the_reference_in_its_metadata(bills, mirror):
    with running_server(bills) as live:
        _, meta = request(live.url + "/metadata")
        _, news = request(live.url + "/predict", json.dumps({"texts": headlines(mirror, 50)}).encode())
        _, own = request(live.url + "/predict", json.dumps({"texts": own_test_split(bills)[:50]}).encode())
        _, few = request(live.url + "/predict", json.dumps({"texts": headlines(mirror, 5)}).encode())
    reference = meta["familiarity_reference"]
    assert reference["chosen_on"] == "validation documents" and reference["unknown_words"] < 0.1
    assert "unlike the training data" in news["warning"] and "warning" not in own
    assert "warning" not in few  # too few texts to tell
