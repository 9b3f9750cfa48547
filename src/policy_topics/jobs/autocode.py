"""What a trained model carries about its own promise: the auto-coding threshold, chosen for
``evaluation.target_accuracy`` on predictions the model was not fit on (the validation split, or
out-of-fold predictions under cross-validation; never the test split) and used by ``predict`` and
``serve`` unless a threshold is given; and the familiarity reference against which they tell whether a
batch of texts is like the training data (:mod:`policy_topics.models.familiarity`). The test split then
shows whether the promise held."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from policy_topics.evaluation.coverage import at_threshold, auto_coding_threshold
from policy_topics.evaluation.metrics import SplitEvaluation

_SAMPLE = 50_000  # training texts for the reference vocabulary; held-out texts at most a tenth of that


@dataclass(frozen=True)
class AutoCoding:
    """The chosen threshold with its evidence, and how it did on the test split (when scored)."""

    evidence: dict[str, Any]
    test: tuple[float, float | None] | None

    @property
    def threshold(self) -> float | None:
        return self.evidence["threshold"]

    def metrics(self) -> dict[str, float]:
        if self.threshold is None:
            return {}
        out = {"autocode_threshold": self.threshold, "autocode_chosen_accuracy": self.evidence["accuracy"],
               "autocode_chosen_coverage": self.evidence["coverage"]}
        if self.test is not None:
            out["autocode_test_coverage"] = self.test[0]
            if self.test[1] is not None:
                out["autocode_test_accuracy"] = self.test[1]
        return out

    def lines(self) -> list[str]:
        e = self.evidence
        if self.threshold is None:
            return [f"  auto-coding threshold: none ({e['target_accuracy']:.0%} accuracy is not reached on the "
                    f"{e['n_docs']:,} {e['chosen_on']}); predict and serve use the default"]
        line = (f"  auto-coding threshold {self.threshold:.2f}, carried by the model: {e['accuracy']:.1%} accurate on "
                f"the {e['coverage']:.1%} of {e['n_docs']:,} {e['chosen_on']} it codes")
        if self.test is not None:
            coverage, accuracy = self.test
            shown = "nothing coded" if accuracy is None else f"{coverage:.1%} coded at {accuracy:.1%} accuracy"
            line += f"; on the test split: {shown}"
        return [line]

    def settings(self) -> dict[str, Any]:
        """What the model saves for prediction (with the text cleaning's form, added by the caller)."""
        return {"threshold": self.threshold, "threshold_evidence": self.evidence} if self.threshold is not None else {}


def choose(evaluations: Sequence[SplitEvaluation], cross_validated: bool, grid: Any, target: float) -> AutoCoding:
    """Choose on validation (or out-of-fold) predictions; check on the test split."""
    if cross_validated:
        chosen, on = evaluations[-1], "out-of-fold documents"
    else:
        validation = [ev for ev in evaluations if ev.split == "validation"]
        if not validation:
            return AutoCoding({"threshold": None, "target_accuracy": target, "chosen_on": "validation documents",
                               "n_docs": 0}, None)
        chosen, on = validation[0], "validation documents"
    evidence = auto_coding_threshold(chosen.confidence, chosen.y_pred == chosen.y_true, grid, target, on)
    test = next((ev for ev in evaluations if ev.split == "test"), None)
    checked = None
    if test is not None and evidence["threshold"] is not None:
        checked = at_threshold(test.confidence, test.y_pred == test.y_true, float(evidence["threshold"]))
    return AutoCoding(evidence, checked)


def familiarity_reference(pipeline: Any, splits: Mapping[str, pd.DataFrame], evaluations: Sequence[SplitEvaluation],
                          cross_validated: bool, seed: int) -> dict[str, Any] | None:
    """Unknown words and mean top probability of held-out texts: the validation split against a vocabulary
    of the training split alone and the validation predictions; under cross-validation (or without a
    validation split) a seeded fifth of the rows against the rest, with the out-of-fold predictions.
    None for a model without a vocabulary (hashing features)."""
    from policy_topics.models.familiarity import reference, word_block

    block = word_block(pipeline.named_steps["features"])
    validation = [ev for ev in evaluations if ev.split == "validation"]
    if block is None or not (validation or cross_validated):
        return None
    rng = np.random.default_rng(seed)
    if validation and not cross_validated:
        train, held = splits["train"]["text"].tolist(), splits["validation"]["text"].tolist()
        confidence, on = validation[0].confidence, "validation documents"
    else:
        rows = pd.concat(list(splits.values()))["text"].tolist()
        mask = rng.random(len(rows)) < 0.2
        train = [t for t, m in zip(rows, mask, strict=True) if not m]
        held = [t for t, m in zip(rows, mask, strict=True) if m]
        confidence, on = evaluations[-1].confidence, "held-out documents (a fifth of all)"
    if len(train) > _SAMPLE:
        train = [train[i] for i in rng.choice(len(train), _SAMPLE, replace=False)]
    if len(held) > _SAMPLE // 10:
        held = [held[i] for i in rng.choice(len(held), _SAMPLE // 10, replace=False)]
    return reference(block, train, held, confidence, on)
