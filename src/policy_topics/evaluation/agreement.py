"""Agreement between the model's codes and human codes, as the field reports it: Cohen's kappa
(scikit-learn's ``cohen_kappa_score``) and Krippendorff's alpha for nominal data (the ``krippendorff``
package), each with a seeded percentile-bootstrap interval.

Both statistics of two coders without missing codes depend only on how often each (human, model) pair
of codes occurs, so a bootstrap resample of the documents is a multinomial draw of those pair counts
(the same distribution as drawing documents with replacement). The resamples' kappas are computed all
at once from their confusion matrices with scikit-learn's formula (a call of ``cohen_kappa_score`` costs
milliseconds of input checks, a few seconds for a few hundred resamples); alpha is the package's on every
resample, given as a few units with the same coincidence totals (see :func:`_alpha_units`). Tests check
both against ``cohen_kappa_score`` and the package's alpha of the plain codings, resample by resample. The
point values are the two libraries' own, on the codings as they are.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from policy_topics.errors import ConfigError

STATISTICS = ("kappa", "alpha")
RESAMPLES = 300
_LEVEL = 0.95


@dataclass(frozen=True)
class Agreement:
    """One statistic with its interval; ``value`` is NaN when it is undefined, and ``reason`` says why."""

    statistic: str  # kappa | alpha
    value: float
    low: float
    high: float
    n: int
    reason: str = ""

    @property
    def defined(self) -> bool:
        return bool(np.isfinite(self.value))

    def describe(self) -> str:
        """``0.812 (95% CI 0.790-0.833)``, or ``n/a (why)``."""
        if not self.defined:
            return f"n/a ({self.reason})"
        if not np.isfinite(self.low):
            return f"{self.value:.3f} (no interval: {self.reason})"
        return f"{self.value:.3f} ({_LEVEL:.0%} CI {self.low:.3f}-{self.high:.3f})"


@dataclass(frozen=True)
class _Pairs:
    """The distinct (human, model) code pairs, as indices into ``codes``, and how often each occurs."""

    human: np.ndarray
    model: np.ndarray
    counts: np.ndarray
    codes: np.ndarray

    @classmethod
    def of(cls, human: np.ndarray, model: np.ndarray) -> _Pairs:
        codes, index = np.unique(np.concatenate([human, model]), return_inverse=True)
        n = len(human)
        pair = index[:n] * len(codes) + index[n:]
        kinds, counts = np.unique(pair, return_counts=True)
        return cls(kinds // len(codes), kinds % len(codes), counts, codes)


def _kappa(pairs: _Pairs, counts: np.ndarray) -> float:
    import sklearn
    from sklearn.metrics import cohen_kappa_score

    keep = counts > 0
    if len(np.unique(np.concatenate([pairs.human[keep], pairs.model[keep]]))) < 2:
        return float("nan")
    # The inputs are built here (valid by construction): skipping scikit-learn's checks halves a call's time.
    with warnings.catch_warnings(), sklearn.config_context(skip_parameter_validation=True, assume_finite=True):
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(cohen_kappa_score(pairs.human[keep], pairs.model[keep], sample_weight=counts[keep],
                                       labels=np.arange(len(pairs.codes))))


def _alpha(pairs: _Pairs, counts: np.ndarray) -> float:
    """The package's nominal alpha of the two codings, given as they are (one unit per document)."""
    import krippendorff

    keep = counts > 0
    if len(np.unique(np.concatenate([pairs.human[keep], pairs.model[keep]]))) < 2:
        return float("nan")  # one code only: the package refuses, and alpha is undefined
    codings = np.vstack([np.repeat(pairs.human, counts), np.repeat(pairs.model, counts)])
    return float(krippendorff.alpha(reliability_data=codings, level_of_measurement="nominal"))


def _alpha_units(pairs: _Pairs, counts: np.ndarray) -> np.ndarray:
    """The same codings as few units (rows of value counts) with the same alpha: nominal alpha depends on
    the units only through the codes' totals and the off-diagonal sum of the coincidence matrix. A unit
    with ``c`` values of one code adds ``c`` to its total and nothing off the diagonal, so every agreeing
    document of a code goes into one unit; a unit of ``m`` different codes adds 1 to each total and ``m``
    off the diagonal, like the documents it packs, so the codes of the disagreeing documents are dealt
    round-robin (in runs of one code) into as many units as the most frequent of them has occurrences."""
    size = len(pairs.codes)
    agree = pairs.human == pairs.model
    merged = np.zeros((size, size), dtype=np.int64)
    merged[pairs.human[agree], pairs.human[agree]] = 2 * counts[agree]
    occurrences = np.bincount(np.concatenate([pairs.human[~agree], pairs.model[~agree]]),
                              np.concatenate([counts[~agree], counts[~agree]]), minlength=size).astype(np.int64)
    packed = np.zeros((int(occurrences.max()) if occurrences.any() else 0, size), dtype=np.int64)
    if len(packed):
        order = np.argsort(-occurrences, kind="stable")
        dealt = np.repeat(order, occurrences[order])
        np.add.at(packed, (np.arange(len(dealt)) % len(packed), dealt), 1)
    return np.vstack([merged[merged.sum(axis=1) > 0], packed])


def _kappa_resamples(pairs: _Pairs, draws: np.ndarray) -> np.ndarray:
    """Cohen's kappa of each resample (a row of ``draws``: counts of the pairs), as scikit-learn computes it:
    1 - observed disagreement / the disagreement the two coders' code shares give by chance; NaN where a
    resample holds one code only."""
    size = len(pairs.codes)
    confusion = np.zeros((len(draws), size, size))
    confusion[:, pairs.human, pairs.model] = draws
    n = confusion.sum(axis=(1, 2))
    expected = confusion.sum(axis=2)[:, :, None] * confusion.sum(axis=1)[:, None, :] / n[:, None, None]
    off = 1 - np.eye(size)
    with np.errstate(invalid="ignore", divide="ignore"):
        return 1 - (confusion * off).sum(axis=(1, 2)) / (expected * off).sum(axis=(1, 2))


def _alpha_resamples(pairs: _Pairs, draws: np.ndarray) -> np.ndarray:
    """The package's nominal alpha of each resample, given as :func:`_alpha_units` (NaN: one code only)."""
    import krippendorff

    values = []
    for draw in draws:
        units = _alpha_units(pairs, draw)
        one_code = (units.sum(axis=0) > 0).sum() < 2
        values.append(float("nan") if one_code else krippendorff.alpha(value_counts=units,
                                                                        level_of_measurement="nominal"))
    return np.array(values, dtype=float)


_FUNCTIONS = {"kappa": _kappa, "alpha": _alpha}
_RESAMPLED = {"kappa": _kappa_resamples, "alpha": _alpha_resamples}


def agreement(human: np.ndarray, model: np.ndarray, statistic: str, resamples: int = RESAMPLES,
              seed: int = 0) -> Agreement:
    """``statistic`` (kappa or alpha, nominal) between human and model codes of the same documents, with a
    seeded percentile-bootstrap 95% interval over ``resamples`` resamples of the documents."""
    return agreements(human, model, resamples, seed, (statistic,))[statistic]


def agreements(human: np.ndarray, model: np.ndarray, resamples: int = RESAMPLES, seed: int = 0,
               statistics: tuple[str, ...] = STATISTICS) -> dict[str, Agreement]:
    """Several statistics on the same bootstrap resamples (see :func:`agreement`)."""
    unknown = [s for s in statistics if s not in _FUNCTIONS]
    if unknown:
        raise ValueError(f"unknown agreement statistic {unknown[0]!r}: use one of {', '.join(STATISTICS)}")
    human, model = np.asarray(human), np.asarray(model)
    if human.shape != model.shape or human.ndim != 1:
        raise ValueError(f"human and model codes must be two sequences of one length, not {human.shape} and "
                         f"{model.shape}")
    n = len(human)
    if n < 2:
        return {s: Agreement(s, float("nan"), float("nan"), float("nan"), n, f"{n} document(s): at least 2 needed")
                for s in statistics}
    pairs = _Pairs.of(human, model)
    draws = np.random.default_rng(seed).multinomial(n, pairs.counts / n, size=max(int(resamples), 0))
    return {s: _measure(s, pairs, draws, n) for s in statistics}


def _measure(statistic: str, pairs: _Pairs, draws: np.ndarray, n: int) -> Agreement:
    function = _FUNCTIONS[statistic]
    value = function(pairs, pairs.counts)
    if not np.isfinite(value):
        return Agreement(statistic, value, float("nan"), float("nan"), n,
                         "one code only in both codings: agreement beyond chance is undefined")
    if not len(draws):
        return Agreement(statistic, value, float("nan"), float("nan"), n, "no interval asked (0 resamples)")
    values = _RESAMPLED[statistic](pairs, draws)
    values = values[np.isfinite(values)]
    if len(values) < 0.5 * len(draws):
        return Agreement(statistic, value, float("nan"), float("nan"), n,
                         f"too few documents ({n}) for a bootstrap interval")
    tail = (1 - _LEVEL) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return Agreement(statistic, value, float(low), float(high), n)


def agreement_metrics(results: Mapping[str, Agreement], prefix: str) -> dict[str, float]:
    """``{prefix}_kappa``, ``{prefix}_kappa_low``, ``{prefix}_kappa_high``, ... (undefined values left out,
    so MLflow holds no NaN)."""
    out = {}
    for name, result in results.items():
        for suffix, value in (("", result.value), ("_low", result.low), ("_high", result.high)):
            if np.isfinite(value):
                out[f"{prefix}_{name}{suffix}"] = float(value)
    return out


def resamples_setting(evaluation: Mapping[str, Any]) -> int:
    """``evaluation.agreement.resamples``, checked: bootstrap resamples of the agreement intervals (0: none)."""
    value = (evaluation.get("agreement") or {}).get("resamples", RESAMPLES)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(f"evaluation.agreement.resamples must be a whole number >= 0 (e.g. {RESAMPLES}; 0: no "
                          f"intervals), not {value!r}")
    return value


@dataclass(frozen=True)
class SplitAgreement:
    """Model against human codes on one set of predictions (``what``, e.g. "test split"): on all documents,
    and on the share auto-coded at ``threshold`` (None: the model carries none)."""

    prefix: str  # of the metric names: test, oof, all, ...
    what: str
    overall: dict[str, Agreement]
    threshold: float | None
    autocoded: dict[str, Agreement] | None
    resamples: int

    def metrics(self) -> dict[str, float]:
        out = agreement_metrics(self.overall, self.prefix)
        if self.autocoded is not None:
            out.update(agreement_metrics(self.autocoded, f"{self.prefix}_autocoded"))
            out[f"{self.prefix}_autocoded_n_docs"] = float(self.autocoded["kappa"].n)
        return out

    def _rows(self) -> list[tuple[str, dict[str, Agreement]]]:
        """(label, results): all documents, then the auto-coded share."""
        rows = [("all documents", self.overall)]
        if self.autocoded is not None:
            share = self.autocoded["kappa"].n / max(self.overall["kappa"].n, 1)
            rows.append((f"the {share:.1%} auto-coded at {self.threshold:.2f}", self.autocoded))
        return rows

    def lines(self) -> list[str]:
        """For the terminal: all documents, then the auto-coded share."""
        def both(r: dict[str, Agreement]) -> str:
            return f"kappa {r['kappa'].describe()}, alpha {r['alpha'].describe()}"

        lines = [f"  agreement with the given codes on the {self.what} ({self.overall['kappa'].n:,} docs): "
                 f"{both(self.overall)}"]
        for label, results in self._rows()[1:]:
            lines.append(f"    on {label} ({results['kappa'].n:,} docs): {both(results)}")
        return lines

    def markdown(self) -> list[str]:
        """A section for reports and the model card (the heading is the caller's)."""
        head = ["| documents | docs | Cohen's kappa | 95% CI | Krippendorff's alpha (nominal) | 95% CI |",
                "|---|---:|---:|---:|---:|---:|"]

        def cells(result: Agreement) -> str:
            ci = f"{result.low:.3f}-{result.high:.3f}" if np.isfinite(result.low) else "-"
            return (f"{result.value:.3f} | {ci}" if result.defined else f"n/a ({result.reason}) | -")

        table = [f"| {label} | {r['kappa'].n:,} | {cells(r['kappa'])} | {cells(r['alpha'])} |"
                 for label, r in self._rows()]
        note = ("" if self.threshold is not None else
                " The model carries no auto-coding threshold, so there is no auto-coded share to measure.")
        return [f"Agreement beyond chance between the model's codes and the given (human) codes on the {self.what}: "
                "Cohen's kappa and Krippendorff's alpha for nominal codes, as reported for human coders (1 is "
                "perfect, 0 chance level). Unlike accuracy, both discount the agreement that skewed topic shares "
                f"give by chance. Intervals: percentile bootstrap over {self.resamples} resamples of the documents, "
                f"seeded.{note}", "", *head, *table]


def on_predictions(human: np.ndarray, model: np.ndarray, confidence: np.ndarray, threshold: float | None,
                   prefix: str, what: str, resamples: int = RESAMPLES, seed: int = 0) -> SplitAgreement:
    """Agreement on all documents and on those auto-coded at ``threshold`` (probability of the model's code
    at least the threshold, the predictor's rule)."""
    human, model = np.asarray(human), np.asarray(model)
    overall = agreements(human, model, resamples, seed)
    autocoded = None
    if threshold is not None:
        coded = np.asarray(confidence, dtype=float) >= threshold
        autocoded = agreements(human[coded], model[coded], resamples, seed)
    return SplitAgreement(prefix, what, overall, threshold, autocoded, resamples)
