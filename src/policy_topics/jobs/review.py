"""What a training run says about its gold standard: agreement between the model's codes and the given
codes (:mod:`policy_topics.evaluation.agreement`), and the review sheets a team codes to repair the
given codes (:mod:`policy_topics.evaluation.review`), logged as the run's ``review/`` artifacts (in the
user's tracking store, never in a project folder: the rows can be third-party data).

Settings (``conf/evaluation``): ``agreement.resamples`` and ``review.n``, checked before a run opens.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from policy_topics.errors import ConfigError
from policy_topics.evaluation.agreement import SplitAgreement, on_predictions, resamples_setting
from policy_topics.evaluation.metrics import SplitEvaluation

REVIEW_N = 100
ARTIFACTS = "review"
MISTAKES, CONFLICTS = "confident_mistakes.csv", "conflicting_duplicates.csv"


def review_count(evaluation: Mapping[str, Any]) -> int:
    """``evaluation.review.n``, checked: the confident mistakes a review sheet lists."""
    value = (evaluation.get("review") or {}).get("n", REVIEW_N)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(f"evaluation.review.n must be a whole number >= 0 (e.g. {REVIEW_N}), not {value!r}")
    return value


def check_settings(evaluation: Mapping[str, Any]) -> None:
    """Refuse bad agreement and review settings (before the run opens)."""
    resamples_setting(evaluation)
    review_count(evaluation)


def _scored(evaluations: Sequence[SplitEvaluation], cross_validated: bool) -> tuple[SplitEvaluation, str]:
    """The predictions a training run reports on: the test split's, or the out-of-fold ones."""
    ev = evaluations[-1]
    return ev, ("out-of-fold predictions" if cross_validated else f"{ev.split} split")


def training_agreement(container: Mapping[str, Any], evaluations: Sequence[SplitEvaluation], cross_validated: bool,
                       threshold: float | None) -> SplitAgreement:
    """Kappa and alpha of the model against the given codes on the test split (out-of-fold under
    cross-validation), on all documents and on the share auto-coded at the run's threshold."""
    ev, what = _scored(evaluations, cross_validated)
    return on_predictions(ev.y_true, ev.y_pred, ev.confidence, threshold, ev.split.replace("validation", "val"), what,
                          resamples_setting(container["evaluation"]), int(container["seed"]))


def evaluation_agreement(container: Mapping[str, Any], everything: SplitEvaluation, predictor: Any,
                         in_domain: bool, dataset: str) -> SplitAgreement:
    """Kappa and alpha of a logged model against the given codes of the rows ``evaluate`` scored (topics it never
    saw count as disagreements), on all of them and on the share auto-coded at the model's own threshold."""
    threshold = predictor.threshold if predictor.threshold_source == "model" else None
    what = "test split" if in_domain else f"rows of {dataset}"
    return on_predictions(everything.y_true, everything.y_pred, everything.confidence, threshold, everything.split,
                          what, resamples_setting(container["evaluation"]), int(container["seed"]))


def log_review_sheets(container: Mapping[str, Any], prepared: Any, evaluations: Sequence[SplitEvaluation],
                      cross_validated: bool, pipeline: Any, run_id: str, model_uri: str | None,
                      tracking_uri: str) -> list[str]:
    """Write the two review sheets (with manifests) as the active run's ``review/`` artifacts; the lines
    saying where they are."""
    import mlflow

    from policy_topics.data.sheets import write_sheet
    from policy_topics.evaluation.review import conflicts_sheet, mistakes_sheet
    from policy_topics.models.pipeline import probabilities

    ev, what = _scored(evaluations, cross_validated)
    mistakes = mistakes_sheet(ev, review_count(container["evaluation"]), f"the {what}")
    conflicts = prepared.conflicts
    fields = {"kind": "review", "source": prepared.source, "source_sha256": prepared.source_sha256,
              "data_fingerprint": prepared.fingerprint, "model": model_uri or f"runs:/{run_id}",
              "model_run_id": run_id, "seed": int(container["seed"])}
    with tempfile.TemporaryDirectory(prefix="policy-topics-review-") as tmp:
        out = Path(tmp)
        write_sheet(out / MISTAKES, mistakes, {**fields, "review": f"confident mistakes on the {what}"})
        if conflicts is not None:
            proba = probabilities(pipeline, conflicts["text"].tolist()) if len(conflicts) else None
            write_sheet(out / CONFLICTS, conflicts_sheet(conflicts, proba, pipeline.classes_, prepared.source),
                        {**fields, "review": "texts with conflicting codes, every copy"})
        mlflow.log_artifacts(str(out), ARTIFACTS)
    return _lines(len(mistakes), what, conflicts, run_id, tracking_uri)


def _lines(mistakes: int, what: str, conflicts: Any, run_id: str, tracking_uri: str) -> list[str]:
    if conflicts is None:
        found = ("conflicting duplicates not listed: the prepared data was cached before they were kept (delete its "
                 "folder under the processed-data directory to list them)")
    elif len(conflicts):
        texts = conflicts["text"].nunique()
        found = (f"{ARTIFACTS}/{CONFLICTS}: {len(conflicts):,} copies of {texts:,} text{'s' if texts > 1 else ''} "
                 "with conflicting codes")
    else:
        found = f"{ARTIFACTS}/{CONFLICTS}: none, no text has conflicting codes"
    return ["  review sheets (code them to repair the given codes):",
            f"    {ARTIFACTS}/{MISTAKES}: {mistakes:,} most confident mistakes on the {what}", f"    {found}",
            f"    download: MLFLOW_TRACKING_URI={tracking_uri} mlflow artifacts download -r {run_id} -a {ARTIFACTS} "
            "-d DIR"]
