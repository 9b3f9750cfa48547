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
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from policy_topics import taxonomy
from policy_topics.data.loading import ReadOptions, infer_format, read_hub, read_table
from policy_topics.data.sources import resolve_file
from policy_topics.data.text import normalize_text
from policy_topics.errors import ConfigError, LabelError, PrepError
from policy_topics.reporting import reporter

# Bump when cleaning or splitting changes, so caches from older code are not reused.
PREP_VERSION = 2
SPLITS = ("train", "validation", "test")
MIN_PER_SPLIT_TOPIC = 3  # one document per split at the very least
_UNICODE_FORMS = ("NFC", "NFKC", "NFD", "NFKD")


def parse_label(value: Any) -> int | None:
    """A CAP code from a label cell: ints, "3", "3.0", or a topic name ("Health"); None if missing."""
    if value is None or (isinstance(value, float) and value != value):
        return None
    text = str(value).strip()
    if not text:
        return None
    try:
        number = float(text)
    except ValueError:
        return taxonomy.code_for_name(text)
    if number.is_integer() and abs(number) < 2**31:  # ("1E100" is a number, but no topic code)
        return int(number)
    return None


@dataclass
class CleaningReport:
    """What cleaning did, for the terminal, the run's params and the model card."""

    rows_read: int = 0
    empty_texts: int = 0
    missing_labels: int = 0
    exact_duplicates: int = 0
    conflicting_texts: int = 0
    conflicting_rows: int = 0
    rare_topics_dropped: dict[int, int] = field(default_factory=dict)
    unknown_codes_kept: dict[int, int] = field(default_factory=dict)
    subtopic_codes_mapped: int = 0
    rows_kept: int = 0

    def summary(self) -> str:
        parts = [f"{self.rows_read:,} rows read", f"{self.rows_kept:,} kept"]
        for count, what in (
            (self.empty_texts, "empty texts"),
            (self.missing_labels, "missing labels"),
            (self.exact_duplicates, "exact duplicates"),
            (self.conflicting_rows, f"rows of {self.conflicting_texts} texts with conflicting labels"),
        ):
            if count:
                parts.append(f"{count:,} {what} dropped")
        if self.rare_topics_dropped:
            parts.append(f"rare topics dropped: {self.rare_topics_dropped}")
        if self.subtopic_codes_mapped:
            parts.append(f"{self.subtopic_codes_mapped:,} subtopic codes coded as their major topic")
        return "; ".join(parts)

    @property
    def changed_anything(self) -> bool:
        """Whether cleaning dropped or recoded any row (worth a line on the terminal)."""
        return self.rows_kept != self.rows_read or bool(self.subtopic_codes_mapped)


def row_place(line_offset: int) -> Callable[[int], str]:
    """How a row is named in messages: ``line N`` as a spreadsheet or an editor shows it (``line_offset``
    2 for a file with a header line, 1 for JSON lines), ``row N`` for tables without lines (0)."""
    if line_offset:
        return lambda index: f"line {index + line_offset}"
    return lambda index: f"row {index + 1}"


def clean(frame: pd.DataFrame, unicode_form: str, unknown_labels: str, source_name: str,
          report: CleaningReport, place: Callable[[int], str] | None = None) -> pd.DataFrame:
    """Normalise texts, parse labels, drop empties and duplicates (see :class:`CleaningReport`).
    ``place`` names a row in messages (see :func:`row_place`; default ``row N``)."""
    place = place or row_place(0)
    report.rows_read = len(frame)
    texts = frame["text"].fillna("").astype(str).map(lambda t: normalize_text(t, unicode_form))
    raw_labels = frame["label"]
    labels = raw_labels.map(parse_label)
    bad = labels.isna() & raw_labels.map(lambda v: parse_label(v) is None and str(v).strip() not in ("", "nan"))
    if bad.any():
        first = int(bad.idxmax())
        value = str(raw_labels[first]).strip()
        near = taxonomy.closest_name(value)
        hint = f"did you mean '{near}'? " if near else ""
        raise LabelError(
            f"{source_name}: label {value!r} ({place(first)}) is neither a CAP code nor a topic name "
            f"({int(bad.sum())} such rows); {hint}map the labels to CAP codes or topic names, or pick another "
            "data.label_column"
        )
    labels = _major_topics_of_subtopics(labels, unknown_labels, source_name, report)
    out = pd.DataFrame({"text": texts, "label": labels})
    empty = out["text"] == ""
    report.empty_texts = int(empty.sum())
    missing = out["label"].isna() & ~empty
    report.missing_labels = int(missing.sum())
    out = out[~empty & ~missing].astype({"label": "int64"})

    unknown = out.loc[~out["label"].map(taxonomy.is_known), "label"].value_counts().sort_index()
    if len(unknown):
        listing = ", ".join(f"{code} ({count} docs)" for code, count in unknown.items())
        if unknown_labels == "error":
            raise LabelError(
                f"{source_name}: label codes outside the CAP taxonomy: {listing}; fix the labels, or set "
                "data.unknown_labels=warn to keep them as-is"
            )
        if unknown_labels != "warn":
            raise ConfigError(f"data.unknown_labels must be warn or error, not '{unknown_labels}'")
        reporter().warn(f"{source_name}: keeping label codes outside the CAP taxonomy: {listing}")
        report.unknown_codes_kept = {int(k): int(v) for k, v in unknown.items()}

    before = len(out)
    out = out.drop_duplicates(["text", "label"])
    report.exact_duplicates = before - len(out)
    labels_per_text = out.groupby("text")["label"].transform("nunique")
    conflicting = labels_per_text > 1
    report.conflicting_rows = int(conflicting.sum())
    report.conflicting_texts = int(out.loc[conflicting, "text"].nunique())
    out = out[~conflicting].reset_index(drop=True)
    report.rows_kept = len(out)
    if out.empty:
        raise PrepError(
            f"{source_name}: nothing left after cleaning ({report.summary()}); check data.text_column "
            "and data.label_column point at the texts and their topic codes"
        )
    return out


def _major_topics_of_subtopics(labels: pd.Series, unknown_labels: str, source_name: str,
                               report: CleaningReport) -> pd.Series:
    """CAP subtopic codes (``301`` Health insurance, ``1205``...) coded as their major topic (3, 12), with a
    note; refused under ``data.unknown_labels=error``, which keeps every code as written."""
    majors = labels.map(lambda c: None if c is None or c != c or taxonomy.is_known(int(c))
                        else taxonomy.major_of_subtopic(int(c)))
    subtopic = majors.notna()
    if not subtopic.any():
        return labels
    examples = ", ".join(str(int(c)) for c in sorted(labels[subtopic].unique())[:4])
    if unknown_labels == "error":
        raise LabelError(f"{source_name}: {int(subtopic.sum())} labels are CAP subtopic codes ({examples}, ...); "
                         "code them as their major topics (the leading digits) or set data.unknown_labels=warn, "
                         "which does so")
    report.subtopic_codes_mapped = int(subtopic.sum())
    reporter().note(f"{source_name}: {report.subtopic_codes_mapped:,} labels are CAP subtopic codes ({examples}, "
                    "...): each is coded as its major topic (301 -> 3 Health)")
    return labels.where(~subtopic, majors)


def enforce_topic_sizes(frame: pd.DataFrame, min_docs: int, rare_topics: str, source_name: str,
                        report: CleaningReport) -> pd.DataFrame:
    """Refuse (or drop) topics too small to appear in every split."""
    threshold = max(int(min_docs), MIN_PER_SPLIT_TOPIC)
    counts = frame["label"].value_counts()
    rare = counts[counts < threshold].sort_index()
    if rare.empty:
        return frame
    listing = ", ".join(f"{taxonomy.label(int(c))} has {n}" for c, n in rare.items())
    if rare_topics == "drop":
        report.rare_topics_dropped = {int(c): int(n) for c, n in rare.items()}
        reporter().warn(f"{source_name}: dropping topics with fewer than {threshold} documents: {listing}")
        kept = frame[~frame["label"].isin(rare.index)].reset_index(drop=True)
        report.rows_kept = len(kept)
        if kept["label"].nunique() < 2:
            raise PrepError(f"{source_name}: fewer than two topics are left after dropping rare topics")
        return kept
    if rare_topics != "error":
        raise ConfigError(f"prep.rare_topics must be error or drop, not '{rare_topics}'")
    raise PrepError(
        f"{source_name}: too few documents for the split (need {threshold} per topic): {listing}; "
        "add documents, or set prep.rare_topics=drop (or lower prep.min_docs_per_topic)"
    )


def split(frame: pd.DataFrame, test_size: float, val_size: float, seed: int) -> dict[str, pd.DataFrame]:
    """Stratified train/validation/test split; validation is empty when ``val_size`` is 0."""
    from sklearn.model_selection import train_test_split

    if not (0 < test_size < 1) or not (0 <= val_size < 1) or test_size + val_size >= 1:
        raise ConfigError(
            f"prep.test_size={test_size} and prep.val_size={val_size} must be fractions with "
            "0 < test_size, 0 <= val_size and test_size + val_size < 1"
        )
    n_topics = frame["label"].nunique()
    if round(len(frame) * test_size) < n_topics or (val_size and round(len(frame) * val_size) < n_topics):
        raise PrepError(
            f"{len(frame)} documents in {n_topics} topics are too few for test_size={test_size} and "
            f"val_size={val_size} (each split needs a document of every topic); raise prep.test_size "
            "or add documents"
        )
    rest, test = train_test_split(frame, test_size=test_size, stratify=frame["label"], random_state=seed)
    if val_size:
        train, val = train_test_split(
            rest, test_size=val_size / (1 - test_size), stratify=rest["label"], random_state=seed
        )
    else:
        train, val = rest, rest.iloc[:0]
    return {name: part.reset_index(drop=True) for name, part in zip(SPLITS, (train, val, test), strict=True)}


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
    """Resolve, read, clean and split ``data``, or reuse the cached splits of the same fingerprint.

    ``whole``: no split and no minimum per topic; every clean row is in ``train`` (a pooled dataset)."""
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
    frame: pd.DataFrame | None = None
    local_file = ""
    if data["source"] == "hub":
        if not data.get("hub_id"):
            raise ConfigError("data.hub_id is not set; give data.hub_id=OWNER/NAME")
        frame, identity = read_hub(data["hub_id"], data.get("hub_subset"), data["hub_split"],
                                   data.get("hub_revision"), opts)
        source, sha = f"hf://datasets/{data['hub_id']}", ""
        source_name = str(data["hub_id"])
    elif data["source"] == "file":
        if not data.get("path"):
            raise ConfigError("data.path is not set; give data.path=/path/to/file.csv")
        resolved = resolve_file(str(data["path"]), data.get("url"), data.get("sha256"),
                                paths["raw_dir"], paths.get("data_mirror"))
        identity, source, sha, source_name = resolved.sha256, resolved.source, resolved.sha256, resolved.path.name
        local_file = "" if data.get("url") else str(resolved.path.resolve())
    else:
        raise ConfigError(f"data.source must be file or hub, not '{data['source']}'")

    fp = fingerprint(identity, read_settings, {**prep, "whole": True} if whole else prep)
    target = Path(paths["processed_dir"]) / f"{data['name']}-{fp}".replace("/", "_")
    if (target / "manifest.json").is_file():
        manifest = json.loads((target / "manifest.json").read_text())
        splits = {name: pd.read_parquet(target / f"{name}.parquet") for name in SPLITS}
        return PreparedData(str(data["name"]), fp, source, sha, splits, manifest["report"], target, True, local_file)

    line_offset = 0
    if frame is None:
        frame = read_table(resolved.path, opts)
        line_offset = {"csv": 2, "tsv": 2, "jsonl": 1}.get(infer_format(resolved.path, opts.format), 0)
    report = CleaningReport()
    cleaned = clean(frame, prep["unicode_form"], str(data["unknown_labels"]), source_name, report,
                    row_place(line_offset))
    if whole:
        empty = cleaned.iloc[:0]
        splits = {"train": cleaned.reset_index(drop=True), "validation": empty, "test": empty}
    else:
        cleaned = enforce_topic_sizes(cleaned, int(prep["min_docs_per_topic"]), str(prep["rare_topics"]),
                                      source_name, report)
        splits = split(cleaned, float(prep["test_size"]), float(prep["val_size"]), int(prep["seed"]))
    report_dict = {**report.__dict__, "summary": report.summary(),
                   "splits": {name: len(part) for name, part in splits.items()}}
    manifest = {"name": data["name"], "fingerprint": fp, "source": source, "source_sha256": sha,
                "read": read_settings, "prep": dict(prep), "report": report_dict}
    _write_atomically(target, splits, manifest)
    return PreparedData(str(data["name"]), fp, source, sha, splits, report_dict, target, False, local_file)


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
