"""Review sheets: the coded documents a team should look at again to repair its gold standard, as coder
sheets (``id``, ``text``, an empty ``code``, then ``given_code``, ``given_topic``, ``model_code``,
``model_topic``, ``model_probability``, ``reason``).

- The model's most confident mistakes on documents it was not fit on: where it is sure and the given code
  says otherwise, the given code is often the one that is wrong (or the codebook rule is unclear).
- The texts cleaning dropped because they carry conflicting codes: every copy with its code and its place
  in the source, so the team can decide which code is right (the model, which never saw them, gives its
  guess).

A row's id is the start of its text's sha256 (plus the copy's number for a conflicting text), the same in
every run on the same data.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from policy_topics import taxonomy
from policy_topics.data.sheets import text_digest
from policy_topics.evaluation.error_analysis import confident_mistakes
from policy_topics.evaluation.metrics import SplitEvaluation

COLUMNS = ["id", "text", "given_code", "given_topic", "model_code", "model_topic", "model_probability", "reason"]
_ID_LENGTH = 12


def text_id(text: str) -> str:
    return text_digest(text)[:_ID_LENGTH]


def mistakes_sheet(ev: SplitEvaluation, n: int, where: str) -> pd.DataFrame:
    """The ``n`` documents of ``ev`` the model codes otherwise with the highest probability (each text once),
    as review rows; ``where`` names the predictions (e.g. "the test split")."""
    wrong = confident_mistakes(ev, int((ev.y_pred != ev.y_true).sum()))
    wrong = wrong.drop_duplicates("text").head(max(int(n), 0))
    reasons = [
        f"the model gives {row.predicted_topic} {row.probability:.0%} on {where}; the given code "
        + (f"{row.true_topic} gets {row.probability_of_true_topic:.0%}" if row.true_topic_seen_in_training
           else "is a topic the model never saw in training")
        for row in wrong.itertuples()]
    return pd.DataFrame({
        "id": [text_id(t) for t in wrong["text"]], "text": wrong["text"].to_numpy(),
        "given_code": wrong["true_code"].to_numpy(), "given_topic": wrong["true_topic"].to_numpy(),
        "model_code": wrong["predicted_code"].to_numpy(), "model_topic": wrong["predicted_topic"].to_numpy(),
        "model_probability": wrong["probability"].round(4).to_numpy(), "reason": reasons}, columns=COLUMNS)


def conflicts_sheet(conflicts: pd.DataFrame, proba: np.ndarray | None, classes: np.ndarray,
                    source: str) -> pd.DataFrame:
    """Every copy of the texts coded differently in ``source`` (``conflicts``: text, label, where; see
    :func:`policy_topics.data.cleaning.conflicting_copies`), with the model's code and probability for its
    text (``proba`` over ``classes``, one row per conflicting row; None when there are none)."""
    if conflicts.empty or proba is None:
        return pd.DataFrame(columns=COLUMNS)
    classes = np.asarray(classes)
    best = np.argmax(proba, axis=1)
    copy = conflicts.groupby("text", sort=False).cumcount() + 1
    codes_of = conflicts.groupby("text", sort=False).apply(_coded_as, include_groups=False)
    model_codes = classes[best].astype(int)
    return pd.DataFrame({
        "id": [f"{text_id(t)}-{k}" for t, k in zip(conflicts["text"], copy, strict=True)],
        "text": conflicts["text"].to_numpy(), "given_code": conflicts["label"].astype(int).to_numpy(),
        "given_topic": [taxonomy.topic_name(int(c)) for c in conflicts["label"]],
        "model_code": model_codes, "model_topic": [taxonomy.topic_name(int(c)) for c in model_codes],
        "model_probability": np.round(proba[np.arange(len(best)), best], 4),
        "reason": [f"this copy is at {w} of {source}; the text is coded {codes_of[t]} there; left out of training"
                   for t, w in zip(conflicts["text"], conflicts["where"], strict=True)]}, columns=COLUMNS)


def _coded_as(copies: pd.DataFrame) -> str:
    """``3 Health (line 4), 1 Macroeconomics (line 2, line 7)``: each code of one text with where it is."""
    parts = [f"{int(code)} {taxonomy.topic_name(int(code))} ({', '.join(group['where'])})"
             for code, group in copies.groupby("label", sort=True)]
    return " and ".join(parts)
