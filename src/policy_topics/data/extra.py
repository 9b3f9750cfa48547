"""Coded sheets back into training: ``data.extra_coded=[SHEET.csv, ...]`` on any dataset config.

Each sheet is checked against its manifest (:func:`policy_topics.data.sheets.read_coded_sheet`) with the codes
of the dataset's training split; one bad sheet is one error and nothing is appended. The coded rows are cleaned
as the dataset's own texts and appended to the **training** split only. Rows whose text is already in the
validation or test split are dropped with a warning (they would leak into the scores), as are rows whose text the
training split has already (it keeps its own code) and repeats across sheets. The prepared data gets a new
fingerprint, from the dataset's fingerprint and each sheet's sha256 (in the order given); with no sheet the
fingerprint is the dataset's own, unchanged.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pandas as pd

from policy_topics.data.text import normalize_text
from policy_topics.errors import ConfigError
from policy_topics.reporting import reporter


@dataclass(frozen=True)
class ExtraSheet:
    """What one appended sheet gave: its file and digest, the manifest's model run, and its row counts."""

    path: str
    sha256: str
    kind: str
    model_run_id: str | None
    model: str | None
    coded_rows: int
    appended: int
    dropped: dict[str, int] = field(default_factory=dict)  # reason -> rows

    def record(self) -> dict[str, Any]:
        return {"path": self.path, "sha256": self.sha256, "kind": self.kind, "model": self.model,
                "model_run_id": self.model_run_id, "coded_rows": self.coded_rows, "appended": self.appended,
                "dropped": self.dropped}


def sheet_paths(data: Any) -> list[Path]:
    """``data.extra_coded`` as paths (none when unset or empty); a bare string is one sheet."""
    value = data.get("extra_coded") if hasattr(data, "get") else None
    if value in (None, "", []):
        return []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, Sequence) or not all(isinstance(p, str) and p for p in value):
        raise ConfigError(f"data.extra_coded must be a list of coded sheet files, e.g. "
                          f"data.extra_coded=[round1.csv,round2.csv], not {value!r}")
    return [Path(p).expanduser() for p in value]


def extra_fingerprint(base: str, digests: Sequence[str]) -> str:
    """The fingerprint of a dataset with the sheets of ``digests`` appended (``base`` itself when none)."""
    if not digests:
        return base
    return hashlib.sha256("\n".join([base, *digests]).encode()).hexdigest()[:16]


def append_extra_coded(prepared: Any, data: Any, unicode_form: str) -> Any:
    """``prepared`` (:class:`policy_topics.data.prep.PreparedData`) with the rows of ``data.extra_coded``
    appended to its training split, a new fingerprint and ``report["extra_coded"]``; as it is without sheets."""
    from policy_topics.data.sheets import read_coded_sheet

    paths = sheet_paths(data)
    if not paths:
        return prepared
    topics = prepared.topics
    sheets = [read_coded_sheet(path, topics) for path in paths]  # every sheet checked before anything is appended
    splits = prepared.splits
    held_out = set(pd.concat([splits["validation"]["text"], splits["test"]["text"]]).tolist())
    known = set(splits["train"]["text"].tolist())
    parts, found = [], []
    for path, sheet in zip(paths, sheets, strict=True):
        texts = [normalize_text(str(t), unicode_form) for t in sheet.frame["text"]]
        rows = pd.DataFrame({"text": texts, "label": sheet.frame["code"].astype("int64").to_numpy()})
        reasons = {"in the validation or test split": rows["text"].isin(held_out),
                   "already in the training split or an earlier sheet": rows["text"].isin(known),
                   "repeated on the sheet": rows["text"].duplicated()}
        taken, dropped = pd.Series(False, index=rows.index), {}
        for reason, mask in reasons.items():
            dropped[reason] = int((mask & ~taken).sum())
            taken |= mask
        keep = ~taken
        manifest = sheet.manifest
        found.append(ExtraSheet(str(path.resolve()), sheet.sha256, str(manifest.get("kind")),
                                manifest.get("model_run_id"), manifest.get("model"), len(rows), int(keep.sum()),
                                {k: v for k, v in dropped.items() if v}))
        parts.append(rows[keep])
        known.update(rows["text"][keep])
    _warn(found)
    train = pd.concat([splits["train"], *parts], ignore_index=True).astype({"label": splits["train"]["label"].dtype})
    report = {**prepared.report, "extra_coded": [s.record() for s in found],
              "splits": {**prepared.report.get("splits", {}), "train": len(train)}}
    return replace(prepared, fingerprint=extra_fingerprint(prepared.fingerprint, [s.sha256 for s in found]),
                   splits={**splits, "train": train}, report=report)


def _warn(found: Sequence[ExtraSheet]) -> None:
    for sheet in found:
        leaked = sheet.dropped.get("in the validation or test split", 0)
        if leaked:
            reporter().warn(f"{Path(sheet.path).name}: {leaked} coded rows left out because their text is in the "
                            "validation or test split (they would be scored on what they were trained on)")
        reporter().line(f"    extra coded: {Path(sheet.path).name} adds {sheet.appended} of its {sheet.coded_rows} "
                        "coded rows to the training split" + "".join(
                            f"; {n} {why}" for why, n in sheet.dropped.items() if not why.startswith("in the ")))
