"""The six registered CAP law datasets, read from the data mirror as `policy-topics train data=cap_laws_XX`
composes them: their own splits kept as published, codes and languages, duplicates across splits."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from conftest import compose

from policy_topics import taxonomy
from policy_topics.data.prep import prepare_dataset
from policy_topics.data.text import normalize_text

COUNTRIES = {"uk": "en", "dk": "da", "fr": "fr", "es": "es", "hu": "hu", "br": "pt"}
FILES = {"train": "train", "validation": "val", "test": "test"}


def composed(country: str, laws_mirror: Path, home: Path, *overrides: str) -> dict:
    return compose(f"data=cap_laws_{country}", f"paths.data_mirror={laws_mirror}", f"paths.home_dir={home}",
                   *overrides)


def raw_split(laws_mirror: Path, country: str, split: str) -> pd.DataFrame:
    folder = laws_mirror / "cap_laws" / country.upper()
    texts = pd.read_csv(folder / f"X_{FILES[split]}.csv", dtype=str, keep_default_na=False)["text"]
    codes = pd.read_csv(folder / f"y_{FILES[split]}.csv", dtype=str, keep_default_na=False)["majortopic"]
    return pd.DataFrame({"text": texts.map(normalize_text), "label": codes.astype(float).astype(int)})


@pytest.mark.parametrize("country", list(COUNTRIES))
def test_each_country_prepares_from_the_mirror_with_its_own_splits_as_published(country, laws_mirror, home):
    cfg = composed(country, laws_mirror, home)
    assert cfg["data"]["language"]["code"] == COUNTRIES[country] and cfg["data"]["language"]["name"]
    with taxonomy.named(cfg["data"]["extra_topics"]):
        prepared = prepare_dataset(cfg["data"], cfg["prep"], cfg["paths"])
        for split in ("validation", "test"):
            raw = raw_split(laws_mirror, country, split)
            assert prepared.splits[split]["text"].tolist() == raw["text"].tolist()
            assert prepared.splits[split]["label"].tolist() == raw["label"].tolist()  # 1.0 read as 1 (ES, BR)
        train = raw_split(laws_mirror, country, "train")
        dropped = prepared.report["conflicting_rows"] + sum(prepared.report["rare_topics_dropped"].values())
        assert len(prepared.splits["train"]) == len(train.drop_duplicates()) - dropped
        assert all(taxonomy.is_known(int(code)) for code in prepared.splits["train"]["label"].unique())
    assert prepared.report["split"] == "predefined" and prepared.source.startswith("https://raw.githubusercontent.com/")


@pytest.mark.parametrize("country", ["dk", "hu", "br", "fr"])
def test_test_texts_also_in_train_are_counted_as_the_files_hold_them(country, laws_mirror, home):
    cfg = composed(country, laws_mirror, home)
    prepared = prepare_dataset(cfg["data"], cfg["prep"], cfg["paths"])
    train, test = raw_split(laws_mirror, country, "train"), raw_split(laws_mirror, country, "test")
    seen = test["text"].isin(set(train["text"]))
    found = prepared.report["cross_split_duplicates"]["test_in_train"]
    assert found == {"rows": int(seen.sum()), "texts": int(test.loc[seen, "text"].nunique())}
    assert found["rows"] > 0


def test_a_mirror_setting_that_names_the_cap_folder_still_serves_uscongress(mirror, laws_mirror, home):
    for setting in (mirror, laws_mirror):  # the cap/ folder itself (as before), or the root holding cap/
        cfg = compose("data=uscongress", f"paths.data_mirror={setting}", f"paths.home_dir={home}")
        assert len(prepare_dataset(cfg["data"], cfg["prep"], cfg["paths"]).splits["test"]) > 0
