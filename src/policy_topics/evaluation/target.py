"""Estimates for a target corpus from a coded random sample of it: accuracy, macro-F1, and per threshold the
share auto-coded and the accuracy of that share, each with a 95% interval, and the threshold to use.

A sample is simple random, or stratified (by the topic a model predicted when the sample was drawn). Each
coded document then stands for ``N_h / n_h`` documents of its stratum (``N_h`` corpus documents, ``n_h``
of them coded), so the estimates stay unbiased for the corpus however the strata were allocated.

- A proportion (accuracy, the share auto-coded) is the weighted mean ``p = sum_h W_h p_h``
  (``W_h = N_h / N``); the accuracy of the auto-coded share is a ratio of two such means. Their
  variance is the usual stratified (linearised, for the ratio) one, without finite-population
  correction (conservative when the sample is a large part of the corpus). The interval is Wilson's,
  with the number of documents replaced by the effective number ``p (1 - p) / variance``, at most the
  number of documents itself (for a simple random sample, exactly the plain Wilson interval on the coded
  documents).
- Macro-F1 (the mean F1 over the topics coders used) has no such formula: its interval is a seeded
  percentile bootstrap that resamples documents within each stratum.
- The threshold for a target accuracy is the lowest one whose interval's lower bound reaches the
  target, with at least :data:`MIN_CODED` coded documents auto-coded at it: one can then be about 97.5%
  sure that the auto-coded share is at least that accurate. The point estimate would pick a threshold
  that falls short about half the time.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

Z = 1.959963984540054  # two-sided 95%
MIN_CODED = 30  # coded documents an interval rests on, at the least
MIN_ADVICE = 10  # coded documents a threshold's accuracy must rest on before it is extrapolated from
RESAMPLES = 1000


@dataclass(frozen=True)
class Estimate:
    """A figure for the corpus with its 95% interval; ``n`` coded documents it rests on."""

    value: float
    low: float
    high: float
    n: int
    effective: float = float("nan")  # the effective number of documents of the interval (n when simple random)

    def describe(self) -> str:
        if not math.isfinite(self.value):
            return "n/a (no coded document)"
        return f"{self.value:.3f} (95% CI {self.low:.3f}-{self.high:.3f}, {self.n} docs)"


@dataclass(frozen=True)
class Design:
    """How the coded documents were drawn: ``strata`` per document (one label for a simple random sample)
    and ``sizes``, the corpus documents per stratum. Strata without a coded document are left out and the
    rest weighed up to the whole corpus (:attr:`missing` names them)."""

    strata: np.ndarray
    sizes: Mapping[Any, int]

    @classmethod
    def simple(cls, n: int, corpus_size: int) -> Design:
        return cls(np.zeros(n, dtype=np.int64), {0: int(corpus_size)})

    @property
    def present(self) -> list[Any]:
        return [h for h in self.sizes if np.any(self.strata == h)]

    @property
    def missing(self) -> dict[Any, int]:
        present = set(self.present)
        return {h: int(size) for h, size in self.sizes.items() if h not in present and size > 0}

    def shares(self) -> dict[Any, float]:
        """``W_h``: each represented stratum's part of the corpus."""
        total = sum(self.sizes[h] for h in self.present)
        return {h: self.sizes[h] / total for h in self.present}

    def weights(self) -> np.ndarray:
        """Corpus documents each coded document stands for (``N_h / n_h``)."""
        out = np.zeros(len(self.strata))
        for h in self.present:
            mask = self.strata == h
            out[mask] = self.sizes[h] / mask.sum()
        return out


def wilson(p: float, n: float) -> tuple[float, float]:
    """Wilson's 95% interval of a proportion ``p`` observed on ``n`` (possibly effective) documents."""
    if n <= 0 or not math.isfinite(p):
        return float("nan"), float("nan")
    denominator = 1 + Z * Z / n
    center = (p + Z * Z / (2 * n)) / denominator
    half = Z / denominator * math.sqrt(max(p * (1 - p), 0.0) / n + Z * Z / (4 * n * n))
    return max(0.0, center - half), min(1.0, center + half)


def ratio(hit: np.ndarray, among: np.ndarray, design: Design) -> Estimate:
    """The corpus share of ``hit`` among the documents where ``among`` holds (all of them: a proportion)."""
    hit, among = np.asarray(hit, dtype=float), np.asarray(among, dtype=float)
    shares = design.shares()
    groups = [(shares[h], design.strata == h) for h in shares]
    numerator = sum(w * hit[m].mean() for w, m in groups)
    denominator = sum(w * among[m].mean() for w, m in groups)
    n = int(among.sum())
    if denominator <= 0:
        return Estimate(float("nan"), float("nan"), float("nan"), 0)
    value = numerator / denominator
    residual = among * (hit - value)
    ddof = 1 if len(groups) > 1 else 0  # one stratum: Wilson's own p(1-p)/n
    variance = sum(w * w * (residual[m].var(ddof=ddof) if m.sum() > ddof else 0.0) / m.sum()
                   for w, m in groups) / denominator ** 2
    # never more precise than a simple random sample of as many documents: small strata whose documents
    # all agree estimate their variance as 0
    effective = min(value * (1 - value) / variance, n) if variance > 0 else n
    return Estimate(float(value), *wilson(value, effective), n, float(effective))


def macro_f1(y_true: np.ndarray, y_pred: np.ndarray, weights: np.ndarray) -> float:
    """Weighted macro-F1 over the topics of ``y_true`` (as the training-time metric: a topic the coders never
    used does not count; a topic never predicted scores 0)."""
    labels, index = np.unique(np.concatenate([y_true, y_pred]), return_inverse=True)
    t, p = index[: len(y_true)], index[len(y_true):]
    k = len(labels)
    hits = np.bincount(t[t == p], weights[t == p], minlength=k)
    true_mass, pred_mass = np.bincount(t, weights, minlength=k), np.bincount(p, weights, minlength=k)
    used = true_mass > 0
    f1 = np.divide(2 * hits, true_mass + pred_mass, out=np.zeros(k), where=(true_mass + pred_mass) > 0)
    return float(f1[used].mean()) if used.any() else float("nan")


def bootstrap_macro_f1(y_true: np.ndarray, y_pred: np.ndarray, design: Design, resamples: int = RESAMPLES,
                       seed: int = 0) -> Estimate:
    """Weighted macro-F1 with a seeded percentile-bootstrap 95% interval (documents resampled within strata)."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    weights = design.weights()
    value = macro_f1(y_true, y_pred, weights)
    rng = np.random.default_rng(seed)
    members = [np.flatnonzero(design.strata == h) for h in design.present]
    draws = []
    for _ in range(int(resamples)):
        picked = np.concatenate([rng.choice(m, len(m)) for m in members])
        draws.append(macro_f1(y_true[picked], y_pred[picked], weights[picked]))
    low, high = np.percentile(draws, [2.5, 97.5]) if draws else (float("nan"), float("nan"))
    return Estimate(value, float(low), float(high), len(y_true))


def threshold_table(correct: np.ndarray, confidence: np.ndarray, design: Design, grid: np.ndarray) -> pd.DataFrame:
    """Per threshold of ``grid``: coded documents auto-coded at it (``n_coded``), the corpus share auto-coded
    and the accuracy of that share, each with its interval."""
    confidence = np.asarray(confidence, dtype=float)
    everything = np.ones(len(confidence))
    rows = []
    for threshold in grid:
        coded = confidence >= threshold
        coverage, accuracy = ratio(coded, everything, design), ratio(np.asarray(correct) & coded, coded, design)
        rows.append({"threshold": float(threshold), "n_coded": int(coded.sum()), "coverage": coverage.value,
                     "coverage_low": coverage.low, "coverage_high": coverage.high, "accuracy": accuracy.value,
                     "accuracy_low": accuracy.low, "accuracy_high": accuracy.high,
                     "effective_n": accuracy.effective})
    return pd.DataFrame(rows)


def needed(p: float, target: float) -> float | None:
    """The effective number of documents at which an accuracy of ``p`` has a lower bound of ``target``
    (None when ``p`` does not exceed it)."""
    if not p > target:
        return None
    low, high = 1.0, 2.0
    while wilson(p, high)[0] < target:
        low, high = high, high * 2
    for _ in range(40):
        middle = (low + high) / 2
        low, high = (middle, high) if wilson(p, middle)[0] < target else (low, middle)
    return high


@dataclass(frozen=True)
class Choice:
    """The threshold for ``target`` (None: not established), its row of the table, and the advice when none."""

    target: float
    threshold: float | None
    row: dict[str, float] | None
    advice: str = ""


def choose_threshold(table: pd.DataFrame, target: float, n_docs: int, corpus_size: int | None = None,
                     min_coded: int = MIN_CODED) -> Choice:
    """The lowest threshold whose accuracy interval's lower bound reaches ``target`` on at least ``min_coded``
    auto-coded documents; else how many more documents (of the ``n_docs`` coded so far, drawn the same
    way from ``corpus_size``) would establish one."""
    eligible = table[(table["n_coded"] >= min_coded) & (table["accuracy_low"] >= target)]
    if not eligible.empty:
        row = eligible.iloc[0].to_dict()
        return Choice(target, float(row["threshold"]), row)
    return Choice(target, None, None, more_to_code(table, target, n_docs, corpus_size, min_coded))


def more_to_code(table: pd.DataFrame, target: float, n_docs: int, corpus_size: int | None = None,
                 min_coded: int = MIN_CODED) -> str:
    """One line: about how many more documents to code until some threshold's lower bound reaches ``target``
    (assuming its accuracy and share stay as measured on at least :data:`MIN_ADVICE` documents), or that
    coding more is not likely to establish one."""
    best: tuple[int, dict[str, Any]] | None = None
    for row in table[table["n_coded"] >= MIN_ADVICE].to_dict("records"):
        effective = needed(row["accuracy"], target)
        if effective is None:
            continue
        design_effect = row["n_coded"] / max(row["effective_n"], 1e-9)
        documents = max(effective * design_effect, min_coded)  # auto-coded coded documents it needs
        more = max(math.ceil((documents - row["n_coded"]) * n_docs / row["n_coded"]), 1)
        if best is None or more < best[0]:
            best = (more, row)
    if best is None:
        top = table[table["n_coded"] >= MIN_ADVICE].sort_values("accuracy", ascending=False).head(1)
        seen = "".join(f" (the best: {r.accuracy:.3f} at threshold {r.threshold:.2f}, on {r.n_coded} coded documents)"
                       for r in top.itertuples())
        return (f"no threshold reaches {target:.0%} accuracy on {MIN_ADVICE} coded documents or more{seen}; coding "
                "more is not likely to establish one: code this corpus by hand, or train on coded documents of it")
    more, row = best
    if corpus_size is not None and more > corpus_size - n_docs:
        return (f"no threshold can be established for {target:.0%} accuracy on this corpus by coding more: it would "
                f"take about {more:,} more documents, and {corpus_size - n_docs:,} are left (the closest: threshold "
                f"{row['threshold']:.2f}, accuracy {row['accuracy']:.3f} on {row['n_coded']} coded documents); code "
                "the rest by hand, lower the target, or train on coded documents of this corpus")
    return (f"no threshold is established for {target:.0%} accuracy yet: code about {more} more documents "
            f"drawn the same way (threshold {row['threshold']:.2f} has accuracy {row['accuracy']:.3f} on "
            f"{row['n_coded']} coded documents; its interval must rest on more to clear {target:.0%})")


@dataclass(frozen=True)
class TargetEstimates:
    """Everything a coded sample tells about the corpus it was drawn from."""

    accuracy: Estimate
    macro_f1: Estimate
    table: pd.DataFrame
    choice: Choice
    agreement: dict[str, Any]  # statistic -> Agreement, of all coded documents
    agreement_auto: dict[str, Any]  # the same on the share auto-coded at the chosen threshold ({} when none)

    def metrics(self) -> dict[str, float]:
        """``sample_accuracy``, ``sample_accuracy_low``, ..., ``sample_threshold`` and the figures at it,
        ``sample_kappa``, ``sample_auto_kappa``, ... (undefined values left out: MLflow holds no NaN)."""
        from policy_topics.evaluation.agreement import agreement_metrics

        out = {"sample_n_docs": float(self.accuracy.n)}
        for name, estimate in (("accuracy", self.accuracy), ("macro_f1", self.macro_f1)):
            out.update({f"sample_{name}": estimate.value, f"sample_{name}_low": estimate.low,
                        f"sample_{name}_high": estimate.high})
        if self.choice.row is not None:
            row = self.choice.row
            out["sample_threshold"] = float(row["threshold"])
            out.update({f"sample_{key}_at_threshold": float(row[key]) for key in (
                "coverage", "coverage_low", "coverage_high", "accuracy", "accuracy_low", "accuracy_high",
                "n_coded")})
        out.update(agreement_metrics(self.agreement, "sample"))
        out.update(agreement_metrics(self.agreement_auto, "sample_auto"))
        return {k: float(v) for k, v in out.items() if math.isfinite(float(v))}


def estimate(human: np.ndarray, predicted: np.ndarray, confidence: np.ndarray, design: Design, grid: np.ndarray,
             target: float, seed: int = 0, resamples: int = RESAMPLES) -> TargetEstimates:
    """Estimates for the corpus from coded documents drawn by ``design``: the model's ``predicted`` codes
    with their ``confidence`` against the ``human`` codes; agreement (Cohen's kappa, Krippendorff's alpha)
    of the coded documents as they are, unweighted."""
    from policy_topics.evaluation.agreement import agreements

    human, predicted = np.asarray(human), np.asarray(predicted)
    correct = human == predicted
    table = threshold_table(correct, confidence, design, grid)
    choice = choose_threshold(table, target, len(human), int(sum(design.sizes.values())))
    auto = {}
    if choice.threshold is not None:
        coded = np.asarray(confidence) >= choice.threshold
        auto = agreements(human[coded], predicted[coded], seed=seed)
    return TargetEstimates(ratio(correct, np.ones(len(human)), design),
                           bootstrap_macro_f1(human, predicted, design, resamples, seed), table, choice,
                           agreements(human, predicted, seed=seed), auto)
