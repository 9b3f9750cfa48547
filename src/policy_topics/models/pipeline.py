"""The scikit-learn pipeline: the features of ``conf/features`` + a linear model of ``conf/model``.

Every hyperparameter comes from the config. Estimators without
``predict_proba`` (LinearSVC, RidgeClassifier, hinge SGD) are wrapped in cross-validated calibration so
every model gives class probabilities.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.calibration import CalibratedClassifierCV
from sklearn.pipeline import Pipeline

from policy_topics.errors import ConfigError
from policy_topics.features.build import build_features
from policy_topics.models.weighting import balanced_weights, topic_balance


def build_estimator(model: Mapping[str, Any]) -> BaseEstimator:
    """Instantiate ``model.estimator`` (a Hydra ``_target_`` spec), refusing unknown parameters."""
    from hydra.errors import InstantiationException
    from hydra.utils import instantiate

    spec = dict(model["estimator"])
    try:
        return instantiate(spec)
    except InstantiationException as exc:
        cause = exc.__cause__ or exc
        raise ConfigError(
            f"model={model.get('name')}: cannot build {spec.get('_target_')} ({cause}); "
            "check the model.estimator.* settings"
        ) from exc


def with_probabilities(estimator: BaseEstimator, calibration: Mapping[str, Any], smallest_topic: int,
                       calibrate: bool | None = None) -> BaseEstimator:
    """Wrap the estimator in :class:`CalibratedClassifierCV` when it lacks ``predict_proba`` or
    ``calibration.always`` is set; ``calibrate`` True/False forces either way (evaluation twins)."""
    if calibrate is None:
        calibrate = bool(calibration.get("always", False)) or not hasattr(estimator, "predict_proba")
    if not calibrate:
        return estimator
    method = calibration.get("method", "sigmoid")
    if method not in ("sigmoid", "isotonic"):
        raise ConfigError(f"model.calibration.method must be sigmoid or isotonic, not '{method}'")
    folds = max(2, min(int(calibration.get("cv", 2)), smallest_topic))
    return CalibratedClassifierCV(estimator, method=method, cv=folds,
                                  ensemble=bool(calibration.get("ensemble", False)),
                                  n_jobs=calibration.get("n_jobs"))


def build_pipeline(features: Mapping[str, Any], model: Mapping[str, Any], smallest_topic: int,
                   calibrate: bool | None = None) -> Pipeline:
    """The full text -> topic pipeline (with class probabilities unless ``calibrate`` is False)."""
    estimator = build_estimator(model)
    topic_balance(model, estimator)  # (checked here, before any run opens; applied by fit_pipeline)
    estimator = with_probabilities(estimator, model.get("calibration", {}), smallest_topic, calibrate)
    return Pipeline([("features", build_features(features)), ("classifier", estimator)])


def check_parameters(pipeline: Pipeline) -> None:
    """Check every step's parameters now: scikit-learn checks them only when fitting, after the MLflow
    run is open, and answers with a traceback."""
    from sklearn.utils._param_validation import InvalidParameterError

    features, classifier = pipeline.named_steps["features"], pipeline.named_steps["classifier"]
    blocks = [t for _, t in getattr(features, "transformer_list", [])]
    blocks += [s for b in blocks if isinstance(b, Pipeline) for _, s in b.steps]
    steps = [features, *blocks, classifier, getattr(classifier, "estimator", None)]
    for step in steps:
        if not hasattr(step, "_parameter_constraints"):
            continue
        try:
            step._validate_params()
        except InvalidParameterError as exc:
            group = "features" if step in steps[:-2] else "model"
            raise ConfigError(f"{exc} Fix the {group}.* setting.") from None


def fit_pipeline(features: Mapping[str, Any], model: Mapping[str, Any], frame: pd.DataFrame,
                 calibrate: bool | None = None, pool: pd.DataFrame | None = None) -> Pipeline:
    """Build and fit the pipeline on a frame with ``text`` and ``label`` columns, plus the ``pool`` rows
    (text, label, weight; see :mod:`policy_topics.data.pooling`) with their sample weights, times the
    weights of ``model.topic_balance`` (:mod:`policy_topics.models.weighting`)."""
    weights = None
    if pool is not None:
        frame = pd.concat([frame[["text", "label"]].assign(weight=1.0), pool], ignore_index=True)
        weights = frame["weight"].to_numpy()
    pipeline = build_pipeline(features, model, int(frame["label"].value_counts().min()), calibrate)
    power = topic_balance(model)
    if power:
        weights = balanced_weights(frame["label"].to_numpy(), power, weights)
    params = {} if weights is None else {"classifier__sample_weight": weights}
    try:
        return pipeline.fit(frame["text"].tolist(), frame["label"].to_numpy(), **params)
    except ValueError as exc:
        if not any(s in str(exc) for s in ("no terms remain", "empty vocabulary", "max_df corresponds to")):
            raise
        raise ConfigError(f"the {len(frame):,} training texts leave no n-gram between the features' min_df and "
                          "max_df (they repeat the same words, or are very few); raise max_df or lower min_df, "
                          "e.g. features.char.max_df=1.0 features.word.min_df=1") from None


@contextmanager
def fitting(blas_threads: int) -> Iterator[None]:
    """Limit BLAS threads and run joblib in threads during fits.

    Threads, not processes: liblinear and the solvers release the GIL, and process start-up would
    cost more than these small fits.
    """
    from joblib import parallel_backend
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=blas_threads), parallel_backend("threading"):
        yield


def is_calibrated(pipeline: Pipeline) -> bool:
    return isinstance(pipeline.named_steps["classifier"], CalibratedClassifierCV)


def probabilities(pipeline: Pipeline, texts: Sequence[str]) -> np.ndarray:
    """Class probabilities; for a classifier without ``predict_proba`` (an uncalibrated twin), the
    softmax of its decision scores, which is what "uncalibrated" means for a margin classifier."""
    if hasattr(pipeline, "predict_proba"):
        return pipeline.predict_proba(list(texts))
    scores = np.asarray(pipeline.decision_function(list(texts)), dtype=np.float64)
    if scores.ndim == 1:
        scores = np.column_stack([-scores, scores])
    scores -= scores.max(axis=1, keepdims=True)
    exp = np.exp(scores)
    return exp / exp.sum(axis=1, keepdims=True)


def class_weights(classifier: BaseEstimator) -> np.ndarray:
    """Per-class feature weights (classes x features) of a fitted linear or NB classifier."""
    if isinstance(classifier, CalibratedClassifierCV):
        return np.mean([class_weights(c.estimator) for c in classifier.calibrated_classifiers_], axis=0)
    if hasattr(classifier, "coef_"):
        coef = np.asarray(classifier.coef_)
        return coef if coef.shape[0] > 1 else np.vstack([-coef[0], coef[0]])
    if hasattr(classifier, "feature_log_prob_"):
        return np.asarray(classifier.feature_log_prob_)
    raise TypeError(f"{type(classifier).__name__} exposes no per-class feature weights")


def top_ngrams(pipeline: Pipeline, k: int, texts: Sequence[str] = ()) -> dict[int, list[tuple[str, float]]]:
    """The ``k`` highest-weighted words and phrases of each topic (code -> [(ngram, weight)]): the word
    block's n-grams, without the char block's fragments or embedding dimensions, which name nothing a
    reader can use (a model of char n-grams alone lists those).

    A hashing model has no vocabulary: its columns are named by the n-grams of ``texts`` (a sample of the
    corpus) that hash to them, and only named columns are ranked."""
    from policy_topics.features.hashing import hashed_ngrams, hashing_blocks

    features = pipeline.named_steps["features"]
    classifier = pipeline.named_steps["classifier"]
    weights = class_weights(classifier)
    if hashing_blocks(features) is not None:
        named = hashed_ngrams(features, texts)
        columns = np.fromiter(named, dtype=np.int64, count=len(named))
        names = np.array([named[c] for c in columns.tolist()], dtype=object)
        weights = weights[:, columns]
    else:
        names = features.get_feature_names_out()
    words = np.asarray([str(n).startswith("word__") or "__" not in str(n) for n in names])
    if words.any():
        names, weights = np.asarray(names, dtype=object)[words], weights[:, words]
    result: dict[int, list[tuple[str, float]]] = {}
    for row, code in enumerate(classifier.classes_):
        best = np.argsort(weights[row])[::-1][:k]
        result[int(code)] = [(str(names[i]), float(weights[row, i])) for i in best]
    return result
