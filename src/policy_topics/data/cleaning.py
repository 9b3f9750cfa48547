"""Cleaning a (text, label) table and splitting it at random: labels parsed (codes, float-written codes,
topic names, subtopic codes), texts normalised, empties, exact duplicates and conflicting codes dropped,
topics too small for a split refused or dropped; what was done is counted in a :class:`CleaningReport`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from policy_topics import taxonomy
from policy_topics.data.text import normalize_text
from policy_topics.errors import ConfigError, LabelError, PrepError
from policy_topics.reporting import reporter

SPLITS = ("train", "validation", "test")
MIN_PER_SPLIT_TOPIC = 3  # one document per split at the very least
MIN_TO_LEARN = 2  # training documents a topic needs (a calibrated fit splits them in two)


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
    # Every row of the texts with conflicting codes (text, label, where), for a review sheet; not a count.
    conflicts: pd.DataFrame | None = field(default=None, repr=False, compare=False)

    def counts(self) -> dict[str, Any]:
        """What is saved with the prepared data and logged: everything but the conflicting rows."""
        return {k: v for k, v in self.__dict__.items() if k != "conflicts"}

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
          report: CleaningReport, place: Callable[[int], str] | None = None, dedupe: bool = True) -> pd.DataFrame:
    """Normalise texts, parse labels, drop empties and duplicates (see :class:`CleaningReport`).
    ``place`` names a row in messages (see :func:`row_place`; default ``row N``). ``dedupe`` False keeps
    duplicates and texts with conflicting labels (a held-out split scored as published)."""
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

    if dedupe:
        report.conflicts = conflicting_copies(out, place)
        before = len(out)
        out = out.drop_duplicates(["text", "label"])
        report.exact_duplicates = before - len(out)
        labels_per_text = out.groupby("text")["label"].transform("nunique")
        conflicting = labels_per_text > 1
        report.conflicting_rows = int(conflicting.sum())
        report.conflicting_texts = int(out.loc[conflicting, "text"].nunique())
        out = out[~conflicting]
    out = out.reset_index(drop=True)
    report.rows_kept = len(out)
    if out.empty:
        raise PrepError(
            f"{source_name}: nothing left after cleaning ({report.summary()}); check data.text_column "
            "and data.label_column point at the texts and their topic codes"
        )
    return out


def conflicting_copies(frame: pd.DataFrame, place: Callable[[int], str]) -> pd.DataFrame:
    """Every row (exact duplicates too) of the texts that carry more than one code: ``text``, ``label`` and
    ``where`` (the row's place in the source, see :func:`row_place`), the copies of a text together."""
    per_text = frame.groupby("text")["label"].transform("nunique")
    rows = frame[per_text > 1]
    first = rows.groupby("text")["label"].transform(lambda column: column.index.min())
    rows = rows.assign(_first=first).sort_values("_first", kind="stable")
    return pd.DataFrame({"text": rows["text"].to_numpy(), "label": rows["label"].to_numpy(),
                         "where": [place(int(i)) for i in rows.index]})


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


def drop_unlearnable(train: pd.DataFrame, source_name: str, report: CleaningReport) -> pd.DataFrame:
    """A fixed training split (a dataset's own) with topics of fewer than :data:`MIN_TO_LEARN` documents:
    those are left out of training with a warning (the held-out rows of the topic stay, scored as errors)."""
    counts = train["label"].value_counts()
    rare = counts[counts < MIN_TO_LEARN].sort_index()
    if rare.empty:
        return train
    listing = ", ".join(f"{taxonomy.label(int(c))} ({n})" for c, n in rare.items())
    reporter().warn(f"{source_name}: topics with fewer than {MIN_TO_LEARN} training documents cannot be learned and "
                    f"are left out of training: {listing}; their validation and test rows are still scored")
    report.rare_topics_dropped = {int(c): int(n) for c, n in rare.items()}
    kept = train[~train["label"].isin(rare.index)].reset_index(drop=True)
    report.rows_kept = len(kept)
    if kept["label"].nunique() < 2:
        raise PrepError(f"{source_name}: fewer than two topics have {MIN_TO_LEARN} or more training documents; "
                        "give a larger training split (or prep.max_rows=null for all rows)")
    return kept
