"""Turn a fitted pipeline into answers people can use: topic names, probabilities, alternatives,
an uncertainty flag, and (for linear models) the words that pushed the decision
(:mod:`policy_topics.models.explanations`).

:class:`TopicPredictor` is shared by the MLflow pyfunc model, the HTTP server and the batch command, so
all three give the same answer for the same text.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse
from sklearn.calibration import CalibratedClassifierCV
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.pipeline import FeatureUnion, Pipeline

from policy_topics.data.text import DEFAULT_FORM, normalize_text
from policy_topics.features.vectorizers import FastTfidfVectorizer
from policy_topics.models.explanations import Explainer
from policy_topics.models.familiarity import Tally, warning, word_block
from policy_topics.models.pipeline import class_weights
from policy_topics.taxonomy import parse_topic_names, topic_name

DEFAULT_TOP_K = 3
DEFAULT_THRESHOLD = 0.2
_BATCH = 64  # from this many texts on, scikit-learn's per-call overhead (about 1.7 ms) no longer matters
STATUS_CODED, STATUS_UNCERTAIN, STATUS_EMPTY = "coded", "uncertain", "empty"


@dataclass(frozen=True)
class _SigmoidLinear:
    """Calibrated linear model as arrays: proba_k = sigmoid(-(a_k * (x.w_k + c_k) + b_k)), normalised."""

    coef: np.ndarray  # (classes, features)
    intercept: np.ndarray
    a: np.ndarray
    b: np.ndarray

    def predict_proba(self, features: sparse.csr_matrix) -> np.ndarray:
        scores = np.asarray(features @ self.coef.T) + self.intercept
        proba = 1.0 / (1.0 + np.exp(self.a * scores + self.b))
        total = proba.sum(axis=1, keepdims=True)
        uniform = np.full_like(proba, 1.0 / proba.shape[1])
        return np.where(total > 0, proba / np.where(total > 0, total, 1.0), uniform)


def _compile(classifier: Any) -> _SigmoidLinear | None:
    """A fast array form of a sigmoid-calibrated linear classifier fitted on all data, if it is one."""
    if not isinstance(classifier, CalibratedClassifierCV) or classifier.method != "sigmoid":
        return None
    if len(classifier.calibrated_classifiers_) != 1 or len(classifier.classes_) < 3:
        return None
    calibrated = classifier.calibrated_classifiers_[0]
    estimator = calibrated.estimator
    if not hasattr(estimator, "coef_") or estimator.coef_.shape[0] != len(classifier.classes_):
        return None
    return _SigmoidLinear(
        coef=np.asarray(estimator.coef_, dtype=np.float64),
        intercept=np.asarray(estimator.intercept_, dtype=np.float64),
        a=np.array([c.a_ for c in calibrated.calibrators]),
        b=np.array([c.b_ for c in calibrated.calibrators]),
    )


class _FastTfidf:
    """TF-IDF features without scikit-learn's per-call validation overhead (about 1 ms per request).

    Same analyzer, vocabulary, tf scaling, idf and norm as the fitted vectorizer(s); a FeatureUnion of
    vectorizers becomes side-by-side blocks, each normalised on its own, as FeatureUnion does.
    """

    def __init__(self, vectorizers: list[TfidfVectorizer]) -> None:
        self.blocks = []
        offset = 0
        for vectorizer in vectorizers:
            idf = vectorizer.idf_ if vectorizer.use_idf else np.ones(len(vectorizer.vocabulary_))
            self.blocks.append((vectorizer.build_analyzer(), vectorizer.vocabulary_, idf, offset,
                                vectorizer.binary, vectorizer.sublinear_tf, vectorizer.norm))
            offset += len(vectorizer.vocabulary_)
        self.width = offset

    @classmethod
    def compile(cls, features: Any) -> _FastTfidf | None:
        if isinstance(features, TfidfVectorizer):
            vectorizers = [features]
        elif isinstance(features, FeatureUnion) and features.transformer_weights is None:
            vectorizers = [t for _, t in features.transformer_list]
        else:
            return None
        if not all(isinstance(v, TfidfVectorizer) and v.norm in ("l2", None) for v in vectorizers):
            return None
        return cls(vectorizers)

    def transform(self, texts: Sequence[str]) -> sparse.csr_matrix:
        indices: list[np.ndarray] = []
        values: list[np.ndarray] = []
        indptr = [0]
        for text in texts:
            nnz = indptr[-1]
            for analyze, vocabulary, idf, offset, binary, sublinear, norm in self.blocks:
                counts: dict[int, int] = {}
                for token in analyze(text):
                    column = vocabulary.get(token)
                    if column is not None:
                        counts[column] = counts.get(column, 0) + 1
                columns = np.fromiter(counts, dtype=np.int64, count=len(counts))
                tf = np.fromiter(counts.values(), dtype=np.float64, count=len(counts))
                if binary:
                    tf[:] = 1.0
                elif sublinear:
                    tf = np.log(tf) + 1.0
                weights = tf * idf[columns]
                if norm == "l2" and len(weights):
                    weights /= np.sqrt(np.dot(weights, weights))
                indices.append(columns + offset)
                values.append(weights)
                nnz += len(columns)
            indptr.append(nnz)
        return sparse.csr_matrix(
            (np.concatenate(values) if values else np.zeros(0), np.concatenate(indices) if indices
             else np.zeros(0, dtype=np.int64), np.asarray(indptr)), shape=(len(texts), self.width))


class TopicPredictor:
    """Predictions with topic names from a fitted text -> topic pipeline."""

    def __init__(self, pipeline: Pipeline, threshold: float | None = DEFAULT_THRESHOLD,
                 text_form: str = DEFAULT_FORM, evidence: dict[str, Any] | None = None,
                 topic_names: dict[Any, str] | None = None) -> None:
        """``threshold``: the top probability from which a text is ``coded``; None for the default.
        ``text_form``: the Unicode form of the training's text cleaning, applied to every text first.
        ``evidence``: how the model's own threshold was chosen (see :meth:`threshold_note`).
        ``topic_names``: the names the training dataset gave its codes (a national codebook's own, saved with
        the model); codes without one read as in :mod:`policy_topics.taxonomy`."""
        self.pipeline = pipeline
        self.threshold = DEFAULT_THRESHOLD if threshold is None else float(threshold)
        self.threshold_source = "default" if threshold is None else "model"
        self.evidence = evidence or {}
        self.text_form = text_form
        self.reference: dict[str, Any] | None = None  # the training's familiarity figures (models.familiarity)
        self.features = pipeline.named_steps["features"]
        self.classifier = pipeline.named_steps["classifier"]
        self.codes = [int(c) for c in self.classifier.classes_]
        own = parse_topic_names(topic_names, "the model's topic_names")
        self.names = [own.get(c) or topic_name(c) for c in self.codes]
        self._fast = _compile(self.classifier)
        self._vectorize = _FastTfidf.compile(self.features) if self._fast is not None else None
        blocks = getattr(self.features, "transformer_list", [("features", self.features)])
        self._counts_by_word = all(isinstance(block, FastTfidfVectorizer) for _, block in blocks)
        self._explainer: Explainer | None = None

    def set_threshold(self, threshold: float) -> None:
        """A threshold the user gave (``--threshold``), in place of the model's own."""
        self.threshold, self.threshold_source = float(threshold), "set"

    def threshold_note(self) -> str:
        """What ``coded`` means for this predictor, and why: said by ``predict`` and ``serve``."""
        rule = f"coded = probability >= {self.threshold:.2f}"
        if self.threshold_source == "set":
            return f"{rule} (the threshold given)"
        if self.threshold_source == "model" and self.evidence.get("accuracy") is not None:
            e = self.evidence
            return (f"{rule}, the model's auto-coding threshold: it gave {e['accuracy']:.1%} accuracy on the "
                    f"{e['n_coded']:,} of {e['n_docs']:,} {e['chosen_on']} it coded (target "
                    f"{e['target_accuracy']:.0%}); on another kind of text, check it on a coded sample")
        return f"{rule} (the default: this model carries no auto-coding threshold)"

    def tally(self) -> Tally | None:
        """A running tally of coded texts to compare with the training data (None: nothing to compare with)."""
        block = word_block(self.features)
        return Tally(block) if block is not None and self.reference else None

    def unfamiliar(self, tally: Tally | None) -> str | None:
        """The warning for what ``tally`` counted, when those texts are unlike the training data."""
        return None if tally is None else warning(tally.figures(), self.reference)

    def clean(self, texts: Sequence[str | None]) -> list[str]:
        """The training's text cleaning (:func:`policy_topics.data.text.normalize_text`)."""
        return [normalize_text("" if t is None else str(t), self.text_form) for t in texts]

    @property
    def topics(self) -> list[dict[str, Any]]:
        return [{"code": c, "topic": n} for c, n in zip(self.codes, self.names, strict=True)]

    def transform(self, texts: Sequence[str]) -> sparse.csr_matrix:
        """The model's features for ``texts``: for a few texts (requests), the predictor's own TF-IDF path,
        without scikit-learn's per-call overhead; for batches, the vectorizers' own transform, whose
        counting is faster per text (see :mod:`policy_topics.features.vectorizers`). Same matrix either way."""
        if self._vectorize is not None and (len(texts) < _BATCH or not self._counts_by_word):
            return self._vectorize.transform(texts)
        return self.features.transform(list(texts))

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """Class probabilities (rows: texts, columns: :attr:`codes`), after the training's text cleaning."""
        texts = self.clean(texts)
        if self._fast is not None:
            return self._fast.predict_proba(self.transform(texts))
        return self.pipeline.predict_proba(list(texts))

    def _explain(self, features: sparse.csr_matrix, row: int, column: int, n: int, text: str) -> list[dict[str, Any]]:
        if self._explainer is None:
            self._explainer = Explainer(self.features, class_weights(self.classifier))
        return self._explainer.explain(features.getrow(row), column, n, text)

    def predict_records(self, texts: Sequence[str], top_k: int = DEFAULT_TOP_K, explain: int = 0,
                        threshold: float | None = None) -> list[dict[str, Any]]:
        """One JSON-ready record per text (see README, "Prediction records")."""
        threshold = self.threshold if threshold is None else threshold
        texts = self.clean(texts)
        present = [i for i, t in enumerate(texts) if t.strip()]
        records: list[dict[str, Any]] = [
            {"topic": None, "code": None, "probability": None, "status": STATUS_EMPTY, "top_topics": []}
            for _ in texts
        ]
        if explain:
            for record in records:
                record["explanation"] = []
        if not present:
            return records
        chosen = [texts[i] for i in present]
        features = self.transform(chosen) if (explain or self._fast) else None
        if self._fast is not None and features is not None:
            proba = self._fast.predict_proba(features)
        else:
            proba = self.pipeline.predict_proba(chosen)
        k = max(1, min(int(top_k), len(self.codes)))
        ranked = np.argsort(-proba, axis=1, kind="stable")[:, :k]
        for row, index in enumerate(present):
            best = int(ranked[row, 0])
            p = float(proba[row, best])
            record = records[index]
            record["top_topics"] = [
                {"topic": self.names[j], "code": self.codes[j], "probability": round(float(proba[row, j]), 6)}
                for j in ranked[row]
            ]
            record["probability"] = round(p, 6)
            if p >= threshold:
                record.update(topic=self.names[best], code=self.codes[best], status=STATUS_CODED)
            else:
                record["status"] = STATUS_UNCERTAIN
            if explain and features is not None:
                record["explanation"] = self._explain(features, row, best, int(explain), chosen[row])
        return records


def predict_topics(pipeline: Pipeline, texts: Sequence[str]) -> pd.DataFrame:
    """One row per text: ``topic`` (name), ``code`` (CAP code) and ``probability`` of the top topic."""
    records = TopicPredictor(pipeline, threshold=0.0).predict_records(texts, top_k=1)
    return pd.DataFrame({
        "topic": pd.Series([r["topic"] for r in records], dtype=object),
        "code": pd.Series([r["code"] for r in records], dtype="Int64"),
        "probability": pd.Series([r["probability"] for r in records], dtype="float64"),
    })
