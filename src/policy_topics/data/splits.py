"""Datasets that ship their own train/validation/test split as paired files: ``X_<split>.csv`` with the texts
and ``y_<split>.csv`` with their codes, in the same row order (the CAP law datasets of the
TextClass-Benchmark). ``prep.split: predefined`` (the default ``auto`` for such datasets) keeps those splits,
so scores compare with figures published on the same test rows.

Cleaning keeps the held-out splits as published: their texts are normalised like any other, but no row is
dropped unless it cannot be scored (an empty text or a missing code); the training split gets the usual
cleaning (exact duplicates and texts with conflicting codes dropped). Texts that occur in two splits are
counted, because a test text also seen in training flatters the score: evaluation reports the test figures
on all rows and on the rows whose text the model was not fit on (``test_unseen_*``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from policy_topics.data.loading import ReadOptions, read_column
from policy_topics.data.sources import ResolvedFile, resolve_file
from policy_topics.errors import ConfigError, DataFormatError

SPLIT_KEYS = ("train", "validation", "test")
SPLIT_MODES = ("auto", "predefined", "random")
ROLES = ("text", "label")


def split_mode(data: Mapping[str, Any], prep: Mapping[str, Any]) -> str:
    """``predefined`` or ``random``: how this dataset is split under ``prep.split``."""
    mode = str(prep.get("split", "auto"))
    if mode not in SPLIT_MODES:
        raise ConfigError(f"prep.split must be one of {', '.join(SPLIT_MODES)}, not '{mode}'")
    ships = bool(data.get("splits"))
    if mode == "predefined" and not ships:
        raise ConfigError(f"prep.split=predefined, but {data.get('name')} ships no splits of its own (data.splits); "
                          "use prep.split=random, or give data.splits.<train|validation|test>.text/.label files")
    if mode == "auto":
        return "predefined" if ships else "random"
    return mode


def _file_names(data: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    splits = data.get("splits") or {}
    names: dict[str, dict[str, str]] = {}
    for key in SPLIT_KEYS:
        entry = splits.get(key)
        if not isinstance(entry, Mapping) or not all(entry.get(role) for role in ROLES):
            raise ConfigError(f"data.splits.{key} must name its two files, e.g. data.splits.{key}.text=X_{key}.csv "
                              f"data.splits.{key}.label=y_{key}.csv")
        names[key] = {role: str(entry[role]) for role in ROLES}
    return names


def resolve_split_files(data: Mapping[str, Any], paths: Mapping[str, Any]) -> dict[str, dict[str, ResolvedFile]]:
    """Each split's text and label file, found like any dataset file (cache, mirror, download from ``data.url``
    + the file name, each checked against ``data.checksums``); all are found before any is read."""
    base = data.get("url")
    checksums = dict(data.get("checksums") or {})
    names = _file_names(data)
    missing = [Path(n).name for files in names.values() for n in files.values() if not checksums.get(Path(n).name)]
    if base and missing:
        raise ConfigError(f"data.checksums has no sha256 for {', '.join(missing)}; a downloaded file is used only "
                          f"once its checksum is known: add data.checksums.{missing[0]}=<sha256>")
    resolved: dict[str, dict[str, ResolvedFile]] = {}
    for key, files in names.items():
        resolved[key] = {}
        for role, name in files.items():
            sha = checksums.get(Path(name).name)
            url = f"{str(base).rstrip('/')}/{Path(name).name}" if base else None
            resolved[key][role] = resolve_file(name, url, sha, paths["raw_dir"], paths.get("data_mirror"),
                                               data.get("mirror_dir"), f"data.splits.{key}.{role}")
    return resolved


def identity(resolved: Mapping[str, Mapping[str, ResolvedFile]]) -> str:
    """One checksum for the set of files (what names the source across runs)."""
    parts = [f"{key}.{role}:{resolved[key][role].sha256}" for key in SPLIT_KEYS for role in ROLES]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def read_split_frames(resolved: Mapping[str, Mapping[str, ResolvedFile]],
                      opts: ReadOptions) -> dict[str, pd.DataFrame]:
    """Each split as a (text, label) table, its two files read through ``datasets``; the files of a split must
    have the same number of rows."""
    frames = {}
    for key in SPLIT_KEYS:
        text_file, label_file = resolved[key]["text"].path, resolved[key]["label"].path
        texts = read_column(text_file, "text", opts)
        labels = read_column(label_file, "label", opts)
        if len(texts) != len(labels):
            raise DataFormatError(
                f"{text_file.name} has {len(texts):,} rows but {label_file.name} has {len(labels):,}: the two files "
                f"of the {key} split must hold the same documents in the same order; use the matching pair")
        frames[key] = pd.DataFrame({"text": texts.to_numpy(), "label": labels.to_numpy()})
    return frames


@dataclass(frozen=True)
class Overlap:
    """Rows of a held-out split whose (cleaned) text also occurs in the rows a model is fit on."""

    rows: int
    texts: int


def overlap(held_out: pd.DataFrame, fitted_on: pd.DataFrame) -> Overlap:
    seen = held_out["text"].isin(set(fitted_on["text"]))
    return Overlap(int(seen.sum()), int(held_out.loc[seen, "text"].nunique()))


def cross_split_duplicates(splits: Mapping[str, pd.DataFrame]) -> dict[str, dict[str, int]]:
    """Exact duplicate texts across splits: validation and test rows (and distinct texts) also in train, and
    test rows also in train or validation (what a model refit on train+validation has seen)."""
    train, validation, test = (splits[key] for key in SPLIT_KEYS)
    found = {"validation_in_train": overlap(validation, train), "test_in_train": overlap(test, train),
             "test_in_train_or_validation": overlap(test, pd.concat([train, validation]))}
    return {name: {"rows": o.rows, "texts": o.texts} for name, o in found.items()}


def duplicates_line(name: str, found: Mapping[str, Mapping[str, int]]) -> str:
    """``DK: 461 test rows (367 distinct texts) also occur in train...``: the note prep prints."""
    test, val = found["test_in_train"], found["validation_in_train"]
    both = found["test_in_train_or_validation"]
    if not (both["rows"] or val["rows"]):
        return f"{name}: no test or validation text also occurs in train (test_unseen_* equals test_*)"
    return (f"{name}: {test['rows']:,} test rows ({test['texts']:,} distinct texts) also occur in train, "
            f"{both['rows']:,} in train or validation; {val['rows']:,} validation rows in train. Test figures are "
            "given on all rows (as published) and on the unseen rows (test_unseen_*)")
