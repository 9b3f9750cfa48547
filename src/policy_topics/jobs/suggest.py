"""``policy-topics suggest``: the uncoded documents whose codes should help the model most, as a coder sheet.

The model codes every document of the corpus; the ones it is least sure of (the smallest margin between its two
best topics), spread over the corpus and never two of the same text (:mod:`policy_topics.models.active`), are
written as a coder sheet with the model's three best guesses beside each (``guess_1``, ``guess_1_topic``,
``guess_1_probability``, ...). Documents whose text is on the coded sheets given to ``exclude`` are left out. Once
coded, the sheet goes back into training through ``data.extra_coded`` (see :mod:`policy_topics.data.extra`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from policy_topics.errors import ConfigError, DataSourceError

GUESSES = 3
_BATCH = 4096


@dataclass(frozen=True)
class Suggestion:
    sheet: Path
    picked: int
    pool: int  # documents that could be picked: distinct texts, not on an excluded sheet
    excluded: int  # documents left out because an excluded sheet holds their text
    model: str
    median_margin: float  # of the picked documents (the model's best minus second-best probability)
    pool_median_margin: float


def suggest(model_ref: str | None, documents: Iterator[Any], n: int, seed: int, output: Path,
            exclude: Sequence[Path] = (), source: Path | None = None) -> Suggestion:
    """Rank ``documents`` (:class:`policy_topics.serving.documents.Document`) with the model, pick ``n`` and
    write the sheet ``output`` (with its manifest). Checks run before any file is written."""
    from policy_topics.data.sheets import write_sheet
    from policy_topics.models.active import distinct_rows, margins, pick, text_key
    from policy_topics.tracking.registry import load, resolve

    if n < 1:
        raise ConfigError(f"--n must be at least 1, not {n}")
    if output.suffix.lower() != ".csv" or not output.parent.is_dir():
        raise ConfigError(f"--output must be a .csv file in an existing folder, not '{output}'")
    resolved = resolve(model_ref)
    loaded = load(resolved)
    predictor = loaded.predictor
    seen = _excluded_texts(exclude, predictor.codes)
    docs = [d for d in documents if d.text.strip()]
    kept = [d for d in docs if text_key(d.text) not in seen]
    if not docs:
        raise DataSourceError("no document with a text in the input; check --input and --column")
    distinct = len(distinct_rows([d.text for d in kept]))
    if n > distinct:
        raise ConfigError(f"--n {n} is more than the {distinct:,} documents there are to suggest ({len(docs):,} "
                          f"with a text, {len(docs) - len(kept):,} on the excluded sheets, identical texts counted "
                          f"once); ask for at most {distinct:,}")
    texts = [d.text for d in kept]
    proba = np.vstack([predictor.predict_proba(texts[i:i + _BATCH]) for i in range(0, len(texts), _BATCH)])
    margin = margins(proba)
    chosen = pick(texts, -margin, n, seed)
    fields = {"kind": "suggest", "model": resolved.loaded, "model_run_id": resolved.run_id, "seed": seed,
              "strategy": "smallest margin between the two best topics, identical texts once, one per TF-IDF "
                          "cluster of the most uncertain", "excluded_sheets": [str(p) for p in exclude]}
    if source is not None:
        from policy_topics.data.sources import file_sha256

        fields.update(source=str(source), source_sha256=file_sha256(source))
    write_sheet(output, _frame([kept[i] for i in chosen]), fields, _guesses(proba[chosen], predictor.codes))
    return Suggestion(output, len(chosen), distinct, len(docs) - len(kept), resolved.loaded,
                      float(np.median(margin[chosen])), float(np.median(margin)))


def _excluded_texts(sheets: Sequence[Path], codes: Sequence[int]) -> set[str]:
    """The texts (:func:`~policy_topics.models.active.text_key`) of the rows of the coded sheets ``sheets``, each
    checked against its manifest."""
    from policy_topics.data.sheets import read_coded_sheet
    from policy_topics.models.active import text_key
    from policy_topics.taxonomy import TOPICS

    known = set(TOPICS) | {int(c) for c in codes}
    return {text_key(t) for sheet in sheets for t in read_coded_sheet(Path(sheet), known).frame["text"]}


def _frame(docs: Sequence[Any]) -> Any:
    import pandas as pd

    return pd.DataFrame({"id": [d.id for d in docs], "text": [d.text for d in docs]})


def _guesses(proba: np.ndarray, codes: Sequence[int]) -> list[list[tuple[int, float]]]:
    best = np.argsort(-proba, axis=1, kind="stable")[:, :GUESSES]
    return [[(int(codes[j]), float(row[j])) for j in order] for row, order in zip(proba, best, strict=True)]
