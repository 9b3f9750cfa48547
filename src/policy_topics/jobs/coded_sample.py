"""``policy-topics evaluate model_ref=MODEL coded_sample=SHEET.csv``: the model measured on a target corpus
through a coded random sample of it (a sheet from ``policy-topics sample``), as an MLflow evaluation run.

The run holds the estimates of :mod:`policy_topics.evaluation.target` (accuracy, macro-F1, per threshold
the share auto-coded and its accuracy, with 95% intervals; agreement with the coders), the threshold for
``evaluation.target_accuracy`` (``sample_threshold``, which ``predict`` and ``serve`` take with
``--threshold-from RUN_ID``), and the table as an artifact. The sheet is checked against its manifest,
and the number of coded documents against what the intervals need, before the run opens.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from omegaconf import DictConfig, OmegaConf

from policy_topics import taxonomy
from policy_topics.errors import ConfigError, RunNotFoundError, SheetError
from policy_topics.evaluation.target import MIN_CODED, Design, TargetEstimates

EVALUATION_TAG = "coded-sample"  # the evaluation run's ``evaluation`` tag


@dataclass
class SampleEvaluation:
    run_id: str
    experiment: str
    sheet: Any  # policy_topics.data.sheets.CodedSheet
    model: str
    estimates: TargetEstimates
    missing_strata: dict[int, int]
    ui_command: str

    @property
    def metrics(self) -> dict[str, float]:
        return self.estimates.metrics()


def design_of(manifest: Mapping[str, Any], ids: Sequence[str]) -> Design:
    """The sampling design of a coded sheet's documents, from its manifest (see :mod:`policy_topics.jobs.sample`)."""
    if manifest.get("design") != "stratified":
        return Design.simple(len(ids), int(manifest.get("corpus_size") or len(manifest["texts"])))
    stratum_of = manifest["stratum_of"]
    return Design(np.array([int(stratum_of[i]) for i in ids]),
                  {int(h): int(s["size"]) for h, s in manifest["strata"].items()})


def _coded_sheet(path: Path, codes: Sequence[int]) -> Any:
    from policy_topics.data.sheets import read_coded_sheet

    sheet = read_coded_sheet(path, set(taxonomy.TOPICS) | set(taxonomy.dataset_topics()) | set(codes))
    kind = sheet.manifest.get("kind")
    if kind != "sample":
        raise SheetError(f"{path.name} is a {kind} sheet: its documents were not drawn at random, so estimates on "
                         "it would be biased; evaluate on a coded sheet from policy-topics sample")
    n = len(sheet.frame)
    if n < MIN_CODED:
        raise SheetError(f"only {n} documents of {path.name} are coded; the intervals need at least {MIN_CODED}: "
                         f"code {MIN_CODED - n} more")
    return sheet


def _experiment(container: Mapping[str, Any], overrides: Sequence[str], client: Any, run: Any) -> str:
    """``tracking.experiment`` when the command sets it, else the experiment of the model's training run."""
    if any(o.lstrip("+~").startswith("data=") for o in overrides):
        raise ConfigError("coded_sample= measures the model on the coded sheet, not on a dataset config: "
                          "drop data=...")
    if run is None or any(o.lstrip("+~").startswith("tracking.experiment=") for o in overrides):
        return str(container["tracking"]["experiment"])
    return str(client.get_experiment(run.info.experiment_id).name)


def run_coded_sample(cfg: DictConfig, overrides: Sequence[str] = ()) -> SampleEvaluation:
    """The whole job for a composed ``conf/evaluate.yaml`` with ``coded_sample`` set."""
    from policy_topics.data.sheets import check_exists
    from policy_topics.evaluation.target import estimate
    from policy_topics.jobs.analysis import EvaluationOptions
    from policy_topics.jobs.evaluate import TrainingRun
    from policy_topics.reporting import reporter
    from policy_topics.tracking.registry import load, resolve, tracking_client
    from policy_topics.tracking.runs import start_run
    from policy_topics.tracking.store import check_reachable, tracking_target

    container: dict[str, Any] = OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)  # type: ignore[assignment]
    options = EvaluationOptions.from_config(container["evaluation"])
    path = Path(str(container["coded_sample"])).expanduser()
    check_exists(path)  # before the model loads
    target = tracking_target(container["tracking"])
    check_reachable(target)
    resolved = resolve(container.get("model_ref"), target.uri)
    client = tracking_client(target.uri)
    run = client.get_run(resolved.run_id) if resolved.run_id else None
    trained = TrainingRun(resolved.run_id, dict(run.data.params) if run else {}, dict(run.data.tags) if run else {})
    target = tracking_target({**container["tracking"], "experiment": _experiment(container, overrides, client, run)})
    predictor = load(resolved).predictor
    sheet = _coded_sheet(path, predictor.codes)
    reporter().line(f"policy-topics evaluate: {resolved.loaded} on {len(sheet.frame)} coded documents of "
                    f"{path.name} -> {target.uri} (experiment '{target.experiment}')")
    design = design_of(sheet.manifest, sheet.frame["id"].tolist())
    proba = predictor.predict_proba(sheet.frame["text"].tolist())
    predicted = np.asarray(predictor.codes)[np.argmax(proba, axis=1)]
    estimates = estimate(sheet.frame["code"].to_numpy(), predicted, proba.max(axis=1), design, options.grid,
                         options.target_accuracy, int(container.get("seed", 0)))
    name = container["tracking"].get("run_name") or f"evaluate {trained.dataset} model on coded {path.name}"
    with start_run(target, name) as eval_run:
        _log(container, sheet, resolved.loaded, trained, estimates, design, predicted, proba.max(axis=1))
    return SampleEvaluation(eval_run.info.run_id, target.experiment, sheet, resolved.loaded, estimates,
                            design.missing, target.ui_command(eval_run.info.experiment_id))


def _log(container: Mapping[str, Any], sheet: Any, model: str, trained: Any, estimates: TargetEstimates,
         design: Design, predicted: np.ndarray, confidence: np.ndarray) -> None:
    import mlflow

    from policy_topics.tracking.runs import flatten, git_state

    manifest = sheet.manifest
    mlflow.log_params({**flatten({"model_ref": container.get("model_ref"), "evaluation": container["evaluation"]}),
                       "coded_sample": str(sheet.path), "coded_sample.sha256": sheet.sha256,
                       "coded_sample.design": manifest.get("design", "random"),
                       "coded_sample.source": manifest.get("source"),
                       "coded_sample.source_sha256": manifest.get("source_sha256"),
                       "coded_sample.corpus_size": manifest.get("corpus_size"),
                       "coded_sample.seed": manifest.get("seed"),
                       "rows": "coded sample"})
    mlflow.set_tags({**git_state(), "evaluation": EVALUATION_TAG, "evaluated_model_uri": model,
                     "evaluated_run_id": trained.run_id or "", "evaluated_model_id": trained.model_id or "",
                     "evaluated_dataset": trained.dataset or "", "dataset": Path(str(manifest.get("source"))).name})
    with tempfile.TemporaryDirectory(prefix="policy-topics-sample-") as tmp:
        out = Path(tmp)
        estimates.table.to_csv(out / "threshold_table.csv", index=False)
        sheet.frame.assign(model_code=predicted, probability=confidence.round(4),
                           weight=design.weights().round(4)).drop(columns=["text"]).to_csv(
            out / "coded_sample_predictions.csv", index=False)
        (out / "metrics.json").write_text(json.dumps(estimates.metrics(), indent=2))
        (out / "report.md").write_text(report(sheet, model, estimates, design))
        mlflow.log_artifacts(str(out))
    mlflow.log_metrics(estimates.metrics(), model_id=trained.model_id)


def headline(estimates: TargetEstimates) -> list[str]:
    """The lines that say what the sample shows, for the report and the terminal."""
    choice = estimates.choice
    lines = [f"accuracy {estimates.accuracy.describe()}", f"macro-F1 {estimates.macro_f1.describe()}"]
    lines += [f"{a.statistic} {a.describe()}" for a in estimates.agreement.values()]
    if choice.row is None:
        lines.append(choice.advice)
        return lines
    row = choice.row
    lines.append(f"threshold {choice.threshold:.2f} for {choice.target:.0%} accuracy: {row['coverage']:.1%} of the "
                 f"corpus auto-coded (95% CI {row['coverage_low']:.1%}-{row['coverage_high']:.1%}), accuracy "
                 f"{row['accuracy']:.3f} (95% CI {row['accuracy_low']:.3f}-{row['accuracy_high']:.3f}, "
                 f"{int(row['n_coded'])} coded documents)")
    lines += [f"auto-coded share: {a.statistic} {a.describe()}" for a in estimates.agreement_auto.values()]
    return lines


def report(sheet: Any, model: str, estimates: TargetEstimates, design: Design) -> str:
    """The run's ``report.md``."""
    from policy_topics.evaluation.report import markdown_table

    manifest = sheet.manifest
    how = "stratified by predicted topic, weighted by stratum" if manifest.get("design") == "stratified" else "random"
    lines = [f"# Coded sample: {model} on {Path(str(manifest.get('source'))).name}", "",
             f"{len(sheet.frame)} coded documents of `{sheet.path.name}` (sha256 {sheet.sha256[:12]}...), a {how} "
             f"sample of {manifest.get('corpus_size')} documents (seed {manifest.get('seed')}).", "",
             *[f"- {line}" for line in headline(estimates)], ""]
    if design.missing:
        lines += [f"Strata without a coded document (left out, the rest weighed up): "
                  f"{', '.join(f'{taxonomy.label(h)} ({n} docs)' for h, n in design.missing.items())}.", ""]
    shown = estimates.table[estimates.table["threshold"].round(6).isin(np.round(np.arange(0, 1.0001, 0.05), 6))]
    lines += ["## Per threshold (every 0.05; threshold_table.csv has them all)", "",
              *markdown_table(pd.DataFrame(shown).reset_index(drop=True))]
    return "\n".join(lines) + "\n"


def summary(result: SampleEvaluation) -> str:
    """The one-screen end of the command."""
    lines = ["", *[f"  {line}" for line in headline(result.estimates)]]
    if result.missing_strata:
        lines.append(f"  note: {len(result.missing_strata)} strata have no coded document and are left out")
    lines += ["", f"  run id      {result.run_id}  (experiment '{result.experiment}')",
              f"  MLflow UI   {result.ui_command}"]
    if result.estimates.choice.threshold is not None:
        lines.append(f"  use it     policy-topics predict --threshold-from {result.run_id} ...")
    return "\n".join(lines)


@dataclass(frozen=True)
class ChosenThreshold:
    threshold: float
    model: str  # the model it was chosen for
    model_run_id: str  # that model's training run
    run_id: str  # the evaluation run
    note: str


def threshold_from(run_id: str, tracking_uri: str) -> ChosenThreshold:
    """The threshold a coded-sample evaluation run chose, with the model it was chosen for."""
    from mlflow.exceptions import MlflowException

    from policy_topics.tracking.registry import tracking_client

    try:
        run = tracking_client(tracking_uri).get_run(run_id)
    except MlflowException:
        raise RunNotFoundError(f"no run {run_id} in {tracking_uri}; give the run id that policy-topics evaluate "
                               "... coded_sample=SHEET.csv printed") from None
    if run.data.tags.get("evaluation") != EVALUATION_TAG:
        raise RunNotFoundError(f"run {run_id} is no evaluation on a coded sample; give the run id of policy-topics "
                               "evaluate model_ref=MODEL coded_sample=SHEET.csv")
    metrics = run.data.metrics
    if "sample_threshold" not in metrics:
        raise RunNotFoundError(f"evaluation run {run_id} established no threshold (too few coded documents or a "
                               "target out of reach); code more and evaluate again, or give --threshold")
    target = float(run.data.params.get("evaluation.target_accuracy", "nan"))
    note = (f"coded = probability >= {metrics['sample_threshold']:.2f}, chosen by evaluation run {run_id} on a "
            f"coded sample of {run.data.tags.get('dataset', 'the target corpus')} for {target:.0%} accuracy: "
            f"{metrics['sample_accuracy_at_threshold']:.3f} (95% CI {metrics['sample_accuracy_low_at_threshold']:.3f}-"
            f"{metrics['sample_accuracy_high_at_threshold']:.3f}) on the {metrics['sample_coverage_at_threshold']:.1%} "
            "it auto-codes")
    tags = run.data.tags
    return ChosenThreshold(float(metrics["sample_threshold"]), tags.get("evaluated_model_uri", ""),
                           tags.get("evaluated_run_id", ""), run_id, note)
