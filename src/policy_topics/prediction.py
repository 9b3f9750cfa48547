"""Turn a fitted pipeline's probabilities into topics people can read."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

from policy_topics.taxonomy import topic_name


def predict_topics(pipeline: Pipeline, texts: Sequence[str]) -> pd.DataFrame:
    """One row per text: ``topic`` (name), ``code`` (CAP code) and ``probability`` of the top topic."""
    if len(texts) == 0:
        return pd.DataFrame({"topic": pd.Series(dtype=str), "code": pd.Series(dtype="int64"),
                             "probability": pd.Series(dtype="float64")})
    proba = pipeline.predict_proba(list(texts))
    classes = pipeline.classes_
    best = np.argmax(proba, axis=1)
    codes = [int(classes[i]) for i in best]
    return pd.DataFrame({
        "topic": [topic_name(c) for c in codes],
        "code": np.asarray(codes, dtype="int64"),
        "probability": proba[np.arange(len(best)), best].astype("float64"),
    })
