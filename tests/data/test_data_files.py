"""Reading files through `datasets`, finding registered files (cache, mirror, download), the split cache."""

from __future__ import annotations

import functools
import gzip
import hashlib
import http.server
import json
import threading
from pathlib import Path

import pandas as pd
import pytest
from conftest import files_under

from policy_topics.data.loading import ReadOptions, infer_format, read_table
from policy_topics.data.prep import prepare_dataset
from policy_topics.data.sources import resolve_file
from policy_topics.errors import DataFormatError, DataSourceError

ROWS = [("Raise the federal minimum wage to fifteen dollars", 5), ("Fund repairs of rural bridges", 10),
        ("Expand broadband in tribal areas", 17), ("Cut the payroll tax for one year", 1)]


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_csv(path: Path, rows=ROWS, sep=",", encoding="utf-8", header=("body", "topic")) -> Path:
    lines = [sep.join(header)] + [f'"{t}"{sep}{c}' for t, c in rows]
    data = ("\n".join(lines) + "\n").encode(encoding)
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)
    return path


OPTS = ReadOptions(text_column="body", label_column="topic")


@pytest.mark.parametrize("name", ["corpus.csv", "corpus.csv.gz"])
def test_csv_is_read_with_configured_columns(tmp_path, name):
    table = read_table(write_csv(tmp_path / name), OPTS)
    assert list(table.columns) == ["text", "label"]
    assert table["text"].tolist() == [t for t, _ in ROWS]
    assert table["label"].tolist() == [str(c) for _, c in ROWS]


def test_tsv_jsonl_and_parquet_are_read(tmp_path):
    write_csv(tmp_path / "c.tsv", sep="\t")
    with open(tmp_path / "c.jsonl", "w") as fh:
        for text, code in ROWS:
            fh.write(json.dumps({"body": text, "topic": code}) + "\n")
    pd.DataFrame(ROWS, columns=["body", "topic"]).to_parquet(tmp_path / "c.parquet")
    for name in ("c.tsv", "c.jsonl", "c.parquet"):
        table = read_table(tmp_path / name, OPTS)
        assert table["text"].tolist() == [t for t, _ in ROWS], name


def test_semicolon_file_read_with_its_delimiter(tmp_path):
    path = write_csv(tmp_path / "c.csv", sep=";")
    assert len(read_table(path, ReadOptions("body", "topic", delimiter=";"))) == len(ROWS)


def test_missing_column_lists_the_columns_found(tmp_path):
    path = write_csv(tmp_path / "c.csv")
    with pytest.raises(DataFormatError, match=r"text column 'text' not found in c.csv; columns found: body, topic; "
                                              r"set data.text_column"):
        read_table(path, ReadOptions("text", "topic"))
    with pytest.raises(DataFormatError, match=r"label column 'major' not found.*set data.label_column"):
        read_table(path, ReadOptions("body", "major"))


def test_wrong_delimiter_hints_at_the_delimiter(tmp_path):
    path = write_csv(tmp_path / "c.csv", sep=";")
    with pytest.raises(DataFormatError, match=r"only one column: is data.delimiter right"):
        read_table(path, OPTS)


def test_undecodable_bytes_name_the_line_and_the_encoding_setting(tmp_path):
    rows = [*ROWS[:2], ("Caf\u00e9 owners seek tax relief", 1), *ROWS[2:]]
    path = write_csv(tmp_path / "latin.csv.gz", rows=rows, encoding="latin-1")
    with pytest.raises(DataFormatError, match=r"latin.csv.gz: line 4 \(byte 0xe9 at column 5\) is not valid utf-8; "
                                              r"set data.encoding .*data.encoding=latin-1"):
        read_table(path, OPTS)
    table = read_table(path, ReadOptions("body", "topic", encoding="latin-1"))
    assert "Café owners seek tax relief" in table["text"].tolist()


def test_format_comes_from_the_name_or_the_setting(tmp_path):
    assert infer_format(Path("x.TSV.gz"), None) == "tsv"
    assert infer_format(Path("x.dat"), "csv") == "csv"
    with pytest.raises(DataFormatError, match=r"set data\.format"):
        infer_format(Path("x.dat"), None)
    with pytest.raises(DataFormatError, match=r"unknown data\.format 'xls'"):
        infer_format(Path("x.csv"), "xls")


def test_missing_local_file_is_named(tmp_path):
    with pytest.raises(DataSourceError, match=r"data file not found: .*nope.csv; set data.path"):
        resolve_file(str(tmp_path / "nope.csv"), None, None, tmp_path / "raw", None)


@pytest.fixture
def http_root(tmp_path):
    """A real HTTP server on loopback serving ``tmp_path/www``."""
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_registered_file_goes_cache_then_mirror_then_download(tmp_path, http_root):
    www, base = http_root
    source = write_csv(www / "corpus.csv.gz")
    digest = sha(source)
    raw, mirror = tmp_path / "raw", tmp_path / "mirror"
    mirror.mkdir()
    got = resolve_file("corpus.csv.gz", f"{base}/corpus.csv.gz", digest, raw, str(mirror))
    assert got.origin == "download" and (raw / "corpus.csv.gz").read_bytes() == source.read_bytes()
    assert [p.name for p in files_under(raw)] == ["corpus.csv.gz"]  # no partial files
    assert resolve_file("corpus.csv.gz", f"{base}/x", digest, raw, str(mirror)).origin == "cache"
    (raw / "corpus.csv.gz").unlink()
    (mirror / "corpus.csv.gz").write_bytes(source.read_bytes())
    got = resolve_file("corpus.csv.gz", f"{base}/x", digest, raw, str(mirror))
    assert got.origin == "mirror" and got.sha256 == digest and got.source == f"{base}/x"


def test_download_with_wrong_checksum_leaves_nothing(tmp_path, http_root):
    www, base = http_root
    write_csv(www / "corpus.csv.gz")
    with pytest.raises(DataSourceError, match=r"has sha256 .*expected 000000000000"):
        resolve_file("corpus.csv.gz", f"{base}/corpus.csv.gz", "0" * 64, tmp_path / "raw", None)
    assert files_under(tmp_path / "raw") == []


def test_offline_without_mirror_names_file_source_and_setting(tmp_path):
    url = "http://127.0.0.1:9/USCongress.csv.gz"  # nothing listens on the discard port
    with pytest.raises(DataSourceError) as err:
        resolve_file("USCongress.csv.gz", url, "ab" * 32, tmp_path / "raw", None)
    message = str(err.value)
    assert "USCongress.csv.gz" in message and url in message and "POLICY_TOPICS_DATA_MIRROR" in message
    assert "\n" not in message
    assert files_under(tmp_path / "raw") == []


def test_tampered_mirror_file_is_refused(tmp_path):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    write_csv(mirror / "corpus.csv.gz")
    with pytest.raises(DataSourceError, match=r"data mirror .*has sha256|has sha256 .*data mirror"):
        resolve_file("corpus.csv.gz", "http://127.0.0.1:9/x", "cd" * 32, tmp_path / "raw", str(mirror))


def demo_like(path: Path, per_topic: int = 12) -> Path:
    words = {3: "clinic hospital nurses", 4: "farm crop wheat", 10: "highway rail airport", 16: "army navy base"}
    rows = [(f"{w} item {i}", code) for code, w in words.items() for i in range(per_topic)]
    return write_csv(path, rows=rows)


def data_cfg(path: Path, **over):
    cfg = {"name": "mini", "source": "file", "path": str(path), "url": None, "sha256": None, "format": None,
           "delimiter": None, "encoding": "utf-8", "text_column": "body", "label_column": "topic",
           "unknown_labels": "warn"}
    return {**cfg, **over}


PREP = {"unicode_form": "NFKC", "test_size": 0.25, "val_size": 0.25, "seed": 3, "min_docs_per_topic": 10,
        "rare_topics": "error"}


def paths_cfg(tmp_path: Path):
    return {"raw_dir": str(tmp_path / "raw"), "processed_dir": str(tmp_path / "processed"), "data_mirror": None}


def test_processed_splits_are_reused_for_the_same_config_and_rebuilt_when_it_changes(tmp_path):
    src = demo_like(tmp_path / "mini.csv")
    first = prepare_dataset(data_cfg(src), PREP, paths_cfg(tmp_path))
    assert not first.reused and (first.path / "train.parquet").is_file()
    again = prepare_dataset(data_cfg(src), PREP, paths_cfg(tmp_path))
    assert again.reused and again.fingerprint == first.fingerprint
    assert again.splits["test"].equals(first.splits["test"])
    changed = prepare_dataset(data_cfg(src), {**PREP, "seed": 4}, paths_cfg(tmp_path))
    assert not changed.reused and changed.fingerprint != first.fingerprint
    demo_like(src, per_topic=13)  # the source file changes: its checksum does too
    assert prepare_dataset(data_cfg(src), PREP, paths_cfg(tmp_path)).fingerprint not in (
        first.fingerprint, changed.fingerprint)
    leftovers = [p for p in (tmp_path / "processed").iterdir() if p.name.startswith(".")]
    assert leftovers == []


def test_failed_preparation_writes_nothing(tmp_path):
    src = demo_like(tmp_path / "mini.csv", per_topic=5)
    with pytest.raises(Exception, match="too few documents"):
        prepare_dataset(data_cfg(src), PREP, paths_cfg(tmp_path))
    assert files_under(tmp_path / "processed") == [] and files_under(tmp_path / "raw") == []
