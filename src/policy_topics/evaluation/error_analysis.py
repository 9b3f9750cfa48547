"""Where the model goes wrong: its most confident mistakes and the topic pairs it confuses most.

Confident mistakes are what slips through auto-coding at a high threshold (and often label noise
worth a second look); confused pairs show which codebook boundaries need clearer rules.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from policy_topics import taxonomy
from policy_topics.evaluation.metrics import SplitEvaluation


def confident_mistakes(ev: SplitEvaluation, top: int) -> pd.DataFrame:
    """The ``top`` wrong predictions with the highest probability: text, true and predicted topic,
    the probability given to the prediction and to the true topic (0 for topics the model never saw)."""
    y_pred = ev.y_pred
    wrong = np.flatnonzero(y_pred != ev.y_true)
    order = wrong[np.argsort(-ev.confidence[wrong], kind="stable")][:top]
    column = {int(c): i for i, c in enumerate(ev.classes)}
    rows = []
    for i in order:
        true = int(ev.y_true[i])
        rows.append({
            "text": ev.texts[i], "true_code": true, "true_topic": taxonomy.topic_name(true),
            "predicted_code": int(y_pred[i]), "predicted_topic": taxonomy.topic_name(int(y_pred[i])),
            "probability": float(ev.confidence[i]),
            "probability_of_true_topic": float(ev.proba[i, column[true]]) if true in column else 0.0,
            "true_topic_seen_in_training": true in column,
        })
    return pd.DataFrame(rows, columns=["text", "true_code", "true_topic", "predicted_code", "predicted_topic",
                                       "probability", "probability_of_true_topic", "true_topic_seen_in_training"])


def confused_pairs(ev: SplitEvaluation, top: int) -> pd.DataFrame:
    """The ``top`` (true, predicted) topic pairs with the most mistakes, with the share of the true
    topic's documents that went to the predicted one."""
    pairs = pd.DataFrame({"true_code": ev.y_true.astype(int), "predicted_code": ev.y_pred.astype(int)})
    support = pairs["true_code"].value_counts()
    wrong = pairs[pairs["true_code"] != pairs["predicted_code"]]
    counts = wrong.value_counts().rename("count").reset_index()
    counts = counts.sort_values(["count", "true_code", "predicted_code"], ascending=[False, True, True]).head(top)
    counts.insert(1, "true_topic", counts["true_code"].map(taxonomy.topic_name))
    counts.insert(3, "predicted_topic", counts["predicted_code"].map(taxonomy.topic_name))
    counts["share_of_true_topic"] = counts["count"] / counts["true_code"].map(support)
    return counts.reset_index(drop=True)
