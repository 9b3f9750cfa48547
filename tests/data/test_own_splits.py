"""Datasets that ship their own train/validation/test as paired X_/y_ files: reading, checking, keeping the
splits, counting texts shared across splits, and finding the files (cache, mirror folder, download)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd
import pytest
from conftest import files_under
from test_data_files import http_root  # noqa: F401 (the loopback HTTP server fixture)

from policy_topics.data.prep import prepare_dataset
from policy_topics.data.splits import cross_split_duplicates
from policy_topics.data.text import normalize_text
from policy_topics.errors import ConfigError, DataFormatError, DataSourceError

FILES = {"train": ("X_train.csv", "y_train.csv"), "validation": ("X_val.csv", "y_val.csv"),
         "test": ("X_test.csv", "y_test.csv")}
PREP = {"unicode_form": "NFKC", "test_size": 0.2, "val_size": 0.1, "seed": 1, "min_docs_per_topic": 10,
        "rare_topics": "error", "split": "auto", "max_rows": None}
WORDS = {1: "budget tax inflation", 3: "hospital nurses clinic", 4: "farm crop wheat", 16: "army navy base"}


def write_pair(folder: Path, split: str, rows: list[tuple[str, str]]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    x_name, y_name = FILES[split]
    pd.DataFrame({"text": [t for t, _ in rows]}).to_csv(folder / x_name, index=False)
    pd.DataFrame({"majortopic": [c for _, c in rows]}).to_csv(folder / y_name, index=False)


def coded_rows(split: str, per_topic: int, code_format: str = "{}") -> list[tuple[str, str]]:
    return [(f"{words} {split} act {i}", code_format.format(code)) for code, words in WORDS.items()
            for i in range(per_topic)]


def write_dataset(folder: Path, code_format: str = "{}") -> Path:
    for split, n in (("train", 12), ("validation", 3), ("test", 3)):
        write_pair(folder, split, coded_rows(split, n, code_format))
    return folder


def data_cfg(folder: Path | None, **over) -> dict:
    prefix = f"{folder}/" if folder else ""
    cfg = {"name": "laws", "source": "file", "path": None, "url": None, "sha256": None, "format": "csv",
           "delimiter": None, "encoding": "utf-8", "text_column": "text", "label_column": "majortopic",
           "unknown_labels": "warn", "mirror_dir": None, "extra_topics": {}, "checksums": {},
           "splits": {split: {"text": prefix + x, "label": prefix + y} for split, (x, y) in FILES.items()}}
    return {**cfg, **over}


def paths_cfg(tmp_path: Path, mirror: Path | None = None) -> dict:
    return {"raw_dir": str(tmp_path / "raw"), "processed_dir": str(tmp_path / "processed"),
            "data_mirror": str(mirror) if mirror else None}


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_dataset_with_its_own_splits_keeps_them_row_for_row(tmp_path):
    prepared = prepare_dataset(data_cfg(write_dataset(tmp_path / "laws")), PREP, paths_cfg(tmp_path))
    for split in FILES:
        texts = pd.read_csv(tmp_path / "laws" / FILES[split][0])["text"].tolist()
        assert prepared.splits[split]["text"].tolist() == texts
    assert prepared.report["split"] == "predefined"


def test_codes_written_as_floats_are_read_as_codes(tmp_path):
    prepared = prepare_dataset(data_cfg(write_dataset(tmp_path / "laws", "{}.0")), PREP, paths_cfg(tmp_path))
    assert sorted(prepared.splits["test"]["label"].unique()) == sorted(WORDS)
    assert prepared.splits["train"]["label"].dtype.kind == "i"


@pytest.mark.parametrize("text", ["Lov om ændring af færøsk søfart", "Törvény a közút ő és ű betűiről",
                                  "Loi relative à la sécurité, ça et là", "Lei da regulação dos órgãos e ações"])
def test_accented_letters_survive_cleaning(text):
    assert normalize_text(f"  {text}\u200b\n") == text


def test_accented_texts_reach_the_prepared_splits_unchanged(tmp_path):
    folder = write_dataset(tmp_path / "laws")
    rows = coded_rows("test", 3)
    rows[0] = ("Lov om søfart, Törvény ő, Loi ça, Lei ã", rows[0][1])
    write_pair(folder, "test", rows)
    prepared = prepare_dataset(data_cfg(folder), PREP, paths_cfg(tmp_path))
    assert prepared.splits["test"]["text"].iloc[0] == "Lov om søfart, Törvény ő, Loi ça, Lei ã"


def test_held_out_splits_keep_their_duplicates_while_train_drops_them(tmp_path):
    folder = write_dataset(tmp_path / "laws")
    train = coded_rows("train", 12)
    write_pair(folder, "train", [*train, train[0]])  # one exact duplicate in train
    test = coded_rows("test", 3)
    write_pair(folder, "test", [*test, test[0], (train[1][0], train[1][1])])  # repeated, and a train text
    prepared = prepare_dataset(data_cfg(folder), PREP, paths_cfg(tmp_path))
    assert len(prepared.splits["train"]) == len(train) and prepared.report["exact_duplicates"] == 1
    assert len(prepared.splits["test"]) == len(test) + 2
    assert prepared.report["cross_split_duplicates"]["test_in_train"] == {"rows": 1, "texts": 1}


def test_duplicates_across_splits_are_counted_in_rows_and_distinct_texts():
    frame = lambda texts: pd.DataFrame({"text": texts, "label": [1] * len(texts)})  # noqa: E731
    splits = {"train": frame(["a", "b", "c"]), "validation": frame(["c", "d"]),
              "test": frame(["a", "a", "b", "d", "e"])}
    found = cross_split_duplicates(splits)
    assert found["test_in_train"] == {"rows": 3, "texts": 2}
    assert found["validation_in_train"] == {"rows": 1, "texts": 1}
    assert found["test_in_train_or_validation"] == {"rows": 4, "texts": 3}


def test_random_split_pools_the_files_and_predefined_needs_them(tmp_path):
    folder = write_dataset(tmp_path / "laws")
    pooled = prepare_dataset(data_cfg(folder), {**PREP, "split": "random"}, paths_cfg(tmp_path))
    assert sum(len(p) for p in pooled.splits.values()) == 4 * (12 + 3 + 3) and "split" not in pooled.report
    single = data_cfg(None, splits=None, path=str(folder / "X_train.csv"))
    with pytest.raises(ConfigError, match=r"ships no splits of its own.*prep\.split=random"):
        prepare_dataset(single, {**PREP, "split": "predefined"}, paths_cfg(tmp_path))
    with pytest.raises(ConfigError, match=r"prep\.split must be one of auto, predefined, random"):
        prepare_dataset(data_cfg(folder), {**PREP, "split": "fixed"}, paths_cfg(tmp_path))


def test_max_rows_keeps_the_first_rows_of_each_split(tmp_path):
    prepared = prepare_dataset(data_cfg(write_dataset(tmp_path / "laws")), {**PREP, "max_rows": 5},
                               paths_cfg(tmp_path))
    assert {k: len(v) for k, v in prepared.splits.items()} == {"train": 5, "validation": 5, "test": 5}
    with pytest.raises(ConfigError, match=r"prep\.max_rows must be a whole number"):
        prepare_dataset(data_cfg(tmp_path / "laws"), {**PREP, "max_rows": 0}, paths_cfg(tmp_path))


def test_a_text_and_label_file_of_different_lengths_is_a_one_line_error(tmp_path):
    folder = write_dataset(tmp_path / "laws")
    y = folder / "y_val.csv"
    y.write_text("\n".join(y.read_text().splitlines()[:-1]) + "\n")
    with pytest.raises(DataFormatError) as err:
        prepare_dataset(data_cfg(folder), PREP, paths_cfg(tmp_path))
    message = str(err.value)
    assert "X_val.csv has 12 rows but y_val.csv has 11" in message and "same order" in message
    assert "\n" not in message and files_under(tmp_path / "processed") == []


def test_a_missing_label_file_is_a_one_line_error_naming_it(tmp_path):
    folder = write_dataset(tmp_path / "laws")
    (folder / "y_test.csv").unlink()
    with pytest.raises(DataSourceError) as err:
        prepare_dataset(data_cfg(folder), PREP, paths_cfg(tmp_path))
    message = str(err.value)
    assert "y_test.csv" in message and "set data.splits.test.label to an existing" in message and "\n" not in message


def test_a_label_file_without_its_column_names_the_setting(tmp_path):
    folder = write_dataset(tmp_path / "laws")
    pd.DataFrame({"major": [1] * 12}).to_csv(folder / "y_val.csv", index=False)
    with pytest.raises(DataFormatError, match=r"label column .majortopic. not found in y_val\.csv; columns found: "
                                              r"major; set data\.label_column"):
        prepare_dataset(data_cfg(folder), PREP, paths_cfg(tmp_path))


def registered(tmp_path: Path, source: Path, url: str = "http://127.0.0.1:9/laws") -> dict:
    """The dataset in ``source`` as a registered one: file names, a folder URL, checksums, its mirror folder."""
    return data_cfg(None, url=url, mirror_dir="cap_laws/XX",
                    checksums={p.name: sha(p) for p in source.iterdir()})


def test_registered_split_files_come_from_their_folder_in_the_mirror(tmp_path):
    source = write_dataset(tmp_path / "mirror" / "cap_laws" / "XX")
    prepared = prepare_dataset(registered(tmp_path, source), PREP, paths_cfg(tmp_path, tmp_path / "mirror"))
    assert len(prepared.splits["train"]) == 48 and prepared.source == "http://127.0.0.1:9/laws"


def test_a_tampered_mirror_file_is_refused_in_one_line_and_nothing_is_prepared(tmp_path):
    source = write_dataset(tmp_path / "mirror" / "cap_laws" / "XX")
    data = registered(tmp_path, source)
    (source / "y_train.csv").write_text((source / "y_train.csv").read_text().replace("16", "3"))
    with pytest.raises(DataSourceError) as err:
        prepare_dataset(data, PREP, paths_cfg(tmp_path, tmp_path / "mirror"))
    message = str(err.value)
    assert "y_train.csv" in message and "has sha256" in message and "replace it" in message and "\n" not in message
    assert files_under(tmp_path / "processed") == [] and files_under(tmp_path / "raw") == []


def test_a_download_with_a_wrong_checksum_leaves_no_file_of_it_in_the_cache(tmp_path, http_root):  # noqa: F811
    www, base = http_root
    source = write_dataset(www / "XX")
    data = registered(tmp_path, source, f"{base}/XX")
    data["checksums"]["X_test.csv"] = "0" * 64
    with pytest.raises(DataSourceError) as err:
        prepare_dataset(data, PREP, paths_cfg(tmp_path))
    assert "X_test.csv" in str(err.value) and "expected 000000000000" in str(err.value)
    cached = [p.name for p in files_under(tmp_path / "raw")]
    assert "X_test.csv" not in cached and not any(name.endswith(".part") for name in cached)
    assert files_under(tmp_path / "processed") == []
    data["checksums"]["X_test.csv"] = sha(source / "X_test.csv")
    assert len(prepare_dataset(data, PREP, paths_cfg(tmp_path)).splits["test"]) == 12
    assert sorted(p.name for p in files_under(tmp_path / "raw" / "cap_laws" / "XX")) == sorted(
        p.name for p in source.iterdir())


def test_a_downloaded_file_needs_its_checksum(tmp_path):
    data = registered(tmp_path, write_dataset(tmp_path / "laws"))
    del data["checksums"]["y_val.csv"]
    with pytest.raises(ConfigError, match=r"data\.checksums has no sha256 for y_val\.csv"):
        prepare_dataset(data, PREP, paths_cfg(tmp_path))


def test_a_mirror_of_the_files_themselves_still_serves_them_and_another_datasets_file_is_passed_over(tmp_path):
    from policy_topics.data.sources import resolve_file

    flat = tmp_path / "flat"
    write_dataset(flat)
    digest = sha(flat / "X_train.csv")
    got = resolve_file("X_train.csv", "http://127.0.0.1:9/x", digest, tmp_path / "raw", str(flat), "cap_laws/XX")
    assert got.origin == "mirror" and got.path == (flat / "X_train.csv").resolve()
    with pytest.raises(DataSourceError) as err:  # a flat file of the same name but another dataset's
        resolve_file("X_train.csv", "http://127.0.0.1:9/x", "ab" * 32, tmp_path / "raw", str(flat), "cap_laws/XX")
    assert "not in the data mirror" in str(err.value) and str(flat / "cap_laws" / "XX") in str(err.value)


def test_a_topic_with_one_training_document_is_left_out_of_training_and_its_test_rows_stay(tmp_path):
    folder = write_dataset(tmp_path / "laws")
    write_pair(folder, "train", [*coded_rows("train", 12), ("immigration visa act", "9")])
    write_pair(folder, "test", [*coded_rows("test", 3), ("immigration visa rules", "9")])
    prepared = prepare_dataset(data_cfg(folder), PREP, paths_cfg(tmp_path))
    assert 9 not in set(prepared.splits["train"]["label"]) and prepared.report["rare_topics_dropped"] == {9: 1}
    assert 9 in set(prepared.splits["test"]["label"])
