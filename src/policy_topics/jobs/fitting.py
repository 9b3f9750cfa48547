"""Independent fits in worker processes: the fit on train and the refit on train+validation need not
wait for each other, so on a machine with two cores they run at once.

Processes, not threads: the TF-IDF analyzers hold the GIL, and liblinear draws from one process-wide
random generator (seeded per fit), so fits in threads would interleave its draws and differ from run to
run. A fit in its own process gives the same model as the same fit in this one.

The workers are joblib's reusable loky processes; :func:`warm_up` starts them (and their imports) while
the command is still preparing data, so the fits do not pay for process start-up.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from sklearn.pipeline import Pipeline

from policy_topics import taxonomy
from policy_topics.data.pooling import POOL_ROWS
from policy_topics.evaluation.metrics import SplitEvaluation

_IDLE_TIMEOUT_S = 120
TOPIC_NAMES = "_topic_names"


def available_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def worker_count(requested: int, fits: int) -> int:
    """How many processes ``fits`` independent fits use: never more than asked, cores, or fits; 1 means
    fit in this process."""
    return max(1, min(int(requested), available_cores(), fits))


_started: list[Any] = []  # the executor, once this process has started one


def _executor(workers: int) -> Any:
    # joblib's own reusable executor, not loky's: both are one process-wide singleton, and one made by
    # loky directly breaks a later ``Parallel(backend="loky")`` in the same process.
    from joblib.executor import get_memmapping_executor

    executor = get_memmapping_executor(workers, timeout=_IDLE_TIMEOUT_S)
    _started[:] = [executor]
    return executor


def stop_workers() -> None:
    """Stop the worker processes now (the command is done with them); a later fit starts new ones."""
    for executor in _started:
        executor.shutdown(wait=True, kill_workers=True)
    _started.clear()


def _import_fitting_code() -> None:
    # What the first fit would otherwise import: scikit-learn's estimators (with the pipeline module), Hydra's
    # instantiate (0.2 s) and the scoring code.
    import hydra.utils  # noqa: F401

    import policy_topics.evaluation.metrics
    import policy_topics.models.pipeline  # noqa: F401


def warm_up(container: Mapping[str, Any]) -> list[Future]:
    """Start the worker processes in the background when the job will fit several models (on train and on
    train+validation, or k cross-validation folds). Returns at once, with futures that finish when each
    worker is ready (none when the fits stay in this process)."""
    folds = int(container["evaluation"].get("cv_folds") or 0)
    fits = folds if folds >= 2 else 2 if container["refit"] and float(container["prep"]["val_size"]) > 0 else 1
    workers = worker_count(container.get("fit_processes", 1), fits)
    if workers == 1:
        return []
    executor = _executor(workers)
    return [executor.submit(_import_fitting_code) for _ in range(workers)]


def fit_one(features: Mapping[str, Any], model: Mapping[str, Any], frame: pd.DataFrame, blas_threads: int,
            calibrate: bool | None = None, pool: pd.DataFrame | None = None) -> Pipeline:
    """Fit the configured pipeline on ``frame`` (and the pooled rows) with BLAS threads limited."""
    from policy_topics.models.pipeline import fit_pipeline, fitting

    with fitting(blas_threads):
        return fit_pipeline(features, model, frame, calibrate, pool)


def fit_from_config(container: Mapping[str, Any], frame: pd.DataFrame, calibrate: bool | None = None) -> Pipeline:
    """:func:`fit_one` with the job's settings, pooled rows included (every fit of a training run)."""
    return fit_one(container["features"], container["model"], frame, int(container["blas_threads"]), calibrate,
                   container.get(POOL_ROWS))


@dataclass
class FitJob:
    """Fit on ``frame``, then score ``held_out`` (frame, split name) pairs with the fitted model; the
    pipeline travels back only when ``keep`` (scoring in the worker saves sending models around)."""

    frame: pd.DataFrame
    held_out: list[tuple[pd.DataFrame, str]] = field(default_factory=list)
    keep: bool = True


@dataclass
class FitResult:
    pipeline: Pipeline | None
    evaluations: list[SplitEvaluation]
    seconds: dict[str, float]  # "fit" and "evaluate <split>", measured where the work ran


def _run_job(container: Mapping[str, Any], job: FitJob, calibrate: bool | None) -> FitResult:
    from policy_topics.evaluation.metrics import evaluate_split
    from policy_topics.models.pipeline import fitting

    taxonomy.use_dataset_topics(container.get(TOPIC_NAMES))
    seconds, evaluations = {}, []
    start = time.perf_counter()
    pipeline = fit_from_config(container, job.frame, calibrate)
    seconds["fit"] = time.perf_counter() - start
    with fitting(int(container["blas_threads"])):
        for frame, split in job.held_out:
            start = time.perf_counter()
            evaluations.append(evaluate_split(pipeline, frame, split))
            seconds[f"evaluate {split}"] = time.perf_counter() - start
    return FitResult(pipeline if job.keep else None, evaluations, seconds)


def run_jobs(container: Mapping[str, Any], jobs: Sequence[FitJob], calibrate: bool | None = None) -> list[FitResult]:
    """Run the jobs; in ``container["fit_processes"]`` worker processes when there are several jobs and
    cores, else one after the other here. Same models and scores either way."""
    settings = {key: container[key] for key in ("features", "model", "blas_threads")}
    settings[POOL_ROWS] = container.get(POOL_ROWS)
    settings[TOPIC_NAMES] = taxonomy.dataset_topics()  # the dataset's own names, for the per-topic tables
    workers = worker_count(container.get("fit_processes", 1), len(jobs))
    if workers == 1:
        return [_run_job(settings, job, calibrate) for job in jobs]
    executor = _executor(workers)
    futures = [executor.submit(_run_job, settings, job, calibrate) for job in jobs]
    try:
        return [future.result() for future in futures]
    except BaseException:
        # Ctrl-C, SIGTERM or a failed fit: stop the other fits now rather than at interpreter exit.
        executor.shutdown(wait=False, kill_workers=True)
        raise


def fit_all(container: Mapping[str, Any], frames: Sequence[pd.DataFrame],
            calibrate: bool | None = None) -> list[Pipeline]:
    """Fit the configured pipeline on each frame (at once where :func:`run_jobs` can)."""
    return [result.pipeline for result in run_jobs(container, [FitJob(frame) for frame in frames], calibrate)]
