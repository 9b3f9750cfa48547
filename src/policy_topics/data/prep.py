"""Clean a (text, label) table and split it into train/validation/test, cached by fingerprint.

The processed splits are saved as Parquet under ``processed_dir/<name>-<fingerprint>/``, where the
fingerprint hashes the source file's sha256, the read options and the prep config: the same config
reuses them, any change gets a fresh folder. A folder is written under a temp name and renamed when
complete, so an interrupted run never leaves a half-written cache.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from policy_topics import taxonomy
from policy_topics.data.cleaning import (
    SPLITS,
    CleaningReport,
    clean,
    drop_unlearnable,
    enforce_topic_sizes,
    row_place,
    split,
)
from policy_topics.data.loading import ReadOptions, infer_format, read_hub, read_table
from policy_topics.data.sources import resolve_file
from policy_topics.data.splits import (
    cross_split_duplicates,
    duplicates_line,
    read_split_frames,
    resolve_split_files,
    split_mode,
)
from policy_topics.data.splits import identity as split_identity
from policy_topics.data.text import normalize_text
from policy_topics.errors import ConfigError
from policy_topics.reporting import reporter

# Bump when cleaning or splitting changes, so caches from older code are not reused.
PREP_VERSION = 2
_UNICODE_FORMS = ("NFC", "NFKC", "NFD", "NFKD")
_CONFLICTS = "conflicts"  # conflicts.parquet beside the splits: the rows cleaning dropped for conflicting codes


@dataclass
class PreparedData:
    """Clean splits of one dataset plus what identifies them."""

    name: str
    fingerprint: str
    source: str
    source_sha256: str
    splits: dict[str, pd.DataFrame]
    report: dict[str, Any]
    path: Path
    reused: bool
    local_file: str = ""  # the absolute path of a local data file (not of a registered or Hub dataset)
    # Every copy of the texts dropped for conflicting codes (text, label, where), for a review sheet; None for
    # prepared data cached before they were kept.
    conflicts: pd.DataFrame | None = None

    @property
    def source_identity(self) -> str:
        """What names the source across runs: the file's sha256, or ``hub:ID`` for a Hub dataset."""
        return self.source_sha256 or self.source.replace("hf://datasets/", "hub:", 1)

    @property
    def topics(self) -> list[int]:
        return sorted(int(c) for c in self.splits["train"]["label"].unique())


def fingerprint(source_identity: str, read: Mapping[str, Any], prep: Mapping[str, Any]) -> str:
    payload = json.dumps(
        {"source": source_identity, "read": dict(read), "prep": dict(prep), "version": PREP_VERSION},
        sort_keys=True, default=str,
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def prepare_dataset(data: Mapping[str, Any], prep: Mapping[str, Any], paths: Mapping[str, Any],
                    whole: bool = False) -> PreparedData:
    """:func:`prepare_splits`, then the coded sheets of ``data.extra_coded`` (none by default) appended to the
    training split, which gives the data a fingerprint of its own (see :mod:`policy_topics.data.extra`)."""
    from policy_topics.data.extra import append_extra_coded

    return append_extra_coded(prepare_splits(data, prep, paths, whole), data, str(prep["unicode_form"]))


def prepare_splits(data: Mapping[str, Any], prep: Mapping[str, Any], paths: Mapping[str, Any],
                   whole: bool = False) -> PreparedData:
    """Resolve, read, clean and split ``data``, or reuse the cached splits of the same fingerprint.

    ``whole``: no split and no minimum per topic; every clean row is in ``train`` (a pooled dataset).
    A dataset that ships its own splits (``data.splits``) keeps them under ``prep.split`` auto or predefined
    (see :mod:`policy_topics.data.splits`)."""
    if prep["unicode_form"] not in _UNICODE_FORMS:
        raise ConfigError(f"prep.unicode_form must be one of {', '.join(_UNICODE_FORMS)}")
    opts = ReadOptions(
        text_column=str(data["text_column"]), label_column=str(data["label_column"]),
        format=data.get("format"), delimiter=data.get("delimiter"), encoding=str(data["encoding"]),
    )
    read_settings = {
        "text_column": opts.text_column, "label_column": opts.label_column, "format": opts.format,
        "delimiter": opts.delimiter, "encoding": opts.encoding, "unknown_labels": data["unknown_labels"],
    }
    mode = "random" if whole else split_mode(data, prep)
    found = _find_source(data, paths, opts)
    fp = fingerprint(found.identity, read_settings, _fingerprinted(prep, mode, whole))
    target = Path(paths["processed_dir"]) / f"{data['name']}-{fp}".replace("/", "_")
    if (target / "manifest.json").is_file():
        manifest = json.loads((target / "manifest.json").read_text())
        splits = {name: pd.read_parquet(target / f"{name}.parquet") for name in SPLITS}
        kept = target / f"{_CONFLICTS}.parquet"
        _note_duplicates(str(data["name"]), manifest["report"])
        return PreparedData(str(data["name"]), fp, found.source, found.sha, splits, manifest["report"], target, True,
                            found.local_file, pd.read_parquet(kept) if kept.is_file() else None)

    report = CleaningReport()
    with taxonomy.named(data.get("extra_topics")):
        if mode == "predefined":
            splits, extra = _clean_predefined(found, opts, prep, data, report)
        else:
            splits, extra = _clean_and_split(found, opts, prep, data, report, whole), {}
    report_dict = {**report.counts(), "summary": report.summary(),
                   "splits": {name: len(part) for name, part in splits.items()}, **extra}
    manifest = {"name": data["name"], "fingerprint": fp, "source": found.source, "source_sha256": found.sha,
                "read": read_settings, "prep": dict(prep), "report": report_dict}
    conflicts = report.conflicts if report.conflicts is not None else pd.DataFrame(columns=["text", "label", "where"])
    _write_atomically(target, {**splits, _CONFLICTS: conflicts}, manifest)
    _note_duplicates(str(data["name"]), report_dict)
    return PreparedData(str(data["name"]), fp, found.source, found.sha, splits, report_dict, target, False,
                        found.local_file, conflicts)


def _fingerprinted(prep: Mapping[str, Any], mode: str, whole: bool) -> dict[str, Any]:
    """The prep settings that name the splits; ``split`` and ``max_rows`` only when they change anything, so a
    randomly split dataset keeps the fingerprint it had before those settings existed."""
    settings = {**prep, "whole": True} if whole else dict(prep)
    if mode == "random":
        settings.pop("split", None)
    if settings.get("max_rows") is None:
        settings.pop("max_rows", None)
    return settings


def _first_rows(frame: pd.DataFrame, prep: Mapping[str, Any]) -> pd.DataFrame:
    """``prep.max_rows``: only the first rows (a quick trial); all of them when it is null."""
    limit = prep.get("max_rows")
    if limit is None:
        return frame
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ConfigError(f"prep.max_rows must be a whole number of rows above 0 or null (all), not {limit!r}")
    return frame.head(limit)


@dataclass
class _Source:
    """Where a dataset's rows come from: a read Hub table, one file, or the files of its own splits."""

    identity: str
    source: str
    sha: str
    name: str
    local_file: str = ""
    frame: pd.DataFrame | None = None
    path: Path | None = None
    split_files: dict[str, Any] | None = None


def _find_source(data: Mapping[str, Any], paths: Mapping[str, Any], opts: ReadOptions) -> _Source:
    if data["source"] == "hub":
        if not data.get("hub_id"):
            raise ConfigError("data.hub_id is not set; give data.hub_id=OWNER/NAME")
        frame, identity = read_hub(data["hub_id"], data.get("hub_subset"), data["hub_split"],
                                   data.get("hub_revision"), opts)
        return _Source(identity, f"hf://datasets/{data['hub_id']}", "", str(data["hub_id"]), frame=frame)
    if data["source"] != "file":
        raise ConfigError(f"data.source must be file or hub, not '{data['source']}'")
    if data.get("splits"):
        files = resolve_split_files(data, paths)
        sha = split_identity(files)
        source = str(data.get("url") or files["train"]["text"].path.parent)
        return _Source(sha, source, sha, str(data["name"]), split_files=files)
    if not data.get("path"):
        raise ConfigError("data.path is not set; give data.path=/path/to/file.csv")
    resolved = resolve_file(str(data["path"]), data.get("url"), data.get("sha256"), paths["raw_dir"],
                            paths.get("data_mirror"), data.get("mirror_dir"))
    local_file = "" if data.get("url") else str(resolved.path.resolve())
    return _Source(resolved.sha256, resolved.source, resolved.sha256, resolved.path.name, local_file,
                   path=resolved.path)


def _clean_and_split(found: _Source, opts: ReadOptions, prep: Mapping[str, Any], data: Mapping[str, Any],
                     report: CleaningReport, whole: bool) -> dict[str, pd.DataFrame]:
    line_offset = 0
    frame = found.frame
    if found.split_files is not None:  # its own splits, pooled and split at random (prep.split=random)
        frame = pd.concat(read_split_frames(found.split_files, opts).values(), ignore_index=True)
    elif frame is None and found.path is not None:
        frame = read_table(found.path, opts)
        line_offset = {"csv": 2, "tsv": 2, "jsonl": 1}.get(infer_format(found.path, opts.format), 0)
    assert frame is not None
    cleaned = clean(_first_rows(frame, prep), prep["unicode_form"], str(data["unknown_labels"]), found.name, report,
                    row_place(line_offset))
    if whole:
        empty = cleaned.iloc[:0]
        return {"train": cleaned.reset_index(drop=True), "validation": empty, "test": empty}
    cleaned = enforce_topic_sizes(cleaned, int(prep["min_docs_per_topic"]), str(prep["rare_topics"]),
                                  found.name, report)
    return split(cleaned, float(prep["test_size"]), float(prep["val_size"]), int(prep["seed"]))


def _clean_predefined(found: _Source, opts: ReadOptions, prep: Mapping[str, Any], data: Mapping[str, Any],
                      report: CleaningReport) -> tuple[dict[str, pd.DataFrame], dict[str, Any]]:
    """The dataset's own splits: train cleaned as usual (``report``), validation and test kept as published
    (only rows without a text or a code dropped); plus what the report adds (duplicates across splits)."""
    assert found.split_files is not None
    frames = read_split_frames(found.split_files, opts)
    splits, held_out = {}, {}
    for key, frame in frames.items():
        part = report if key == "train" else CleaningReport()
        where = f"{data['name']}/{found.split_files[key]['label'].path.name}"
        splits[key] = clean(_first_rows(frame, prep), prep["unicode_form"], str(data["unknown_labels"]), where, part,
                            row_place(2), dedupe=key == "train")
        if key == "train":
            splits[key] = drop_unlearnable(splits[key], where, part)
        else:
            held_out[key] = {k: getattr(part, k) for k in ("rows_read", "empty_texts", "missing_labels", "rows_kept")}
    # Counted on the files' texts as cleaned, before train drops duplicates and conflicting codes: what the files hold.
    as_read = {key: frame.assign(text=frame["text"].fillna("").astype(str).map(
        lambda t: normalize_text(t, prep["unicode_form"]))) for key, frame in frames.items()}
    duplicates = cross_split_duplicates(as_read)
    return splits, {"split": "predefined", "held_out": held_out, "cross_split_duplicates": duplicates}


def _note_duplicates(name: str, report: Mapping[str, Any]) -> None:
    if report.get("cross_split_duplicates"):
        reporter().note(duplicates_line(name, report["cross_split_duplicates"]))


def _write_atomically(target: Path, splits: dict[str, pd.DataFrame], manifest: dict[str, Any]) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        for name, part in splits.items():
            part.to_parquet(tmp / f"{name}.parquet", index=False)
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2, default=str))
        try:
            tmp.rename(target)
        except OSError:
            if not (target / "manifest.json").is_file():  # not a concurrent writer's finished copy
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
