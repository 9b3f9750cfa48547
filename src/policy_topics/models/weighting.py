"""Topic balance: the rows of rare topics weigh more in the fit, by a tunable degree (``model.topic_balance``).

scikit-learn offers two settings, ``class_weight=None`` (every row weighs 1: frequent topics dominate) and
``class_weight='balanced'`` (every topic weighs the same in all: rare topics are over-predicted). Between the two,
each row of topic *t* weighs ``(documents / (topics x documents of t)) ** topic_balance``: 0 is ``None``, 1 is
``'balanced'``, 0.5 their geometric middle (the square root). Given as sample weights, so it works with every
estimator that accepts them, through probability calibration, and multiplies the weights of pooled rows.
(LinearSVC at 1 differs a little from its own ``'balanced'``: liblinear weighs only the positive side of each
one-vs-rest problem by its class weight, sample weights weigh every row.)
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from policy_topics.errors import ConfigError

BALANCE_KEY = "topic_balance"


def topic_balance(model: Mapping[str, Any], estimator: Any = None) -> float:
    """``model.topic_balance`` (0 when absent), checked: a number from 0 to 1, and (given the ``estimator``) not
    on top of its own ``class_weight``, which would weigh rare topics twice."""
    value = model.get(BALANCE_KEY, 0.0)
    try:
        power = float(value) if value is not None else 0.0
    except (TypeError, ValueError):
        power = math.nan
    if not 0.0 <= power <= 1.0:
        raise ConfigError(f"model.{BALANCE_KEY} must be a number from 0 to 1 (0: rows as they are, 1: every topic "
                          f"weighs the same), not {value!r}; e.g. model.{BALANCE_KEY}=0.5")
    if power and getattr(estimator, "class_weight", None) is not None:
        raise ConfigError(f"model.{BALANCE_KEY}={power:g} and model.estimator.class_weight="
                          f"{estimator.class_weight!r} both weigh rare topics up; keep one, e.g. "
                          "model.estimator.class_weight=null")
    return power


def balanced_weights(labels: np.ndarray, power: float, weights: np.ndarray | None = None) -> np.ndarray:
    """Each row's ``weights`` (1 when not given) times ``(total / (topics x topic total)) ** power``, where the
    totals add up the rows' weights (so pooled rows at weight 0.3 count for 0.3 of a row)."""
    labels = np.asarray(labels)
    base = np.ones(len(labels)) if weights is None else np.asarray(weights, dtype=np.float64)
    topics, inverse = np.unique(labels, return_inverse=True)
    totals = np.bincount(inverse, weights=base, minlength=len(topics))
    per_topic = (base.sum() / (len(topics) * totals)) ** power
    return base * per_topic[inverse]
