"""Re-run a logged training run from the config it recorded, and say whether its numbers came back.

A run logs its resolved config (``config.yaml``), the data fingerprint, package versions and the git
state. Re-running takes that config, with this machine's paths, logs a new run tagged ``rerun_of`` (not
registered: it is a check, not a new model) and compares metrics, data and environment.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from policy_topics.errors import DataSourceError, RunNotFoundError

TOLERANCE = 1e-9


@dataclass
class RerunReport:
    original: str
    rerun: str
    metrics: list[tuple[str, float, float | None]]  # name, original, rerun
    differences: list[str] = field(default_factory=list)  # data and environment differences

    @property
    def mismatched(self) -> list[str]:
        return [name for name, old, new in self.metrics if new is None or abs(old - new) > TOLERANCE]

    def render(self) -> str:
        lines = [f"  {'metric':<22} {'original':>10} {'rerun':>10}"]
        for name, old, new in self.metrics:
            shown = "missing" if new is None else f"{new:.6f}"
            flag = "" if name not in self.mismatched else "  <- differs"
            lines.append(f"  {name:<22} {old:10.6f} {shown:>10}{flag}")
        lines += [f"  note: {d}" for d in self.differences]
        verdict = "metrics match" if not self.mismatched else f"metrics differ: {', '.join(self.mismatched)}"
        lines.append(f"  {verdict} (run {self.original} re-run as {self.rerun})")
        return "\n".join(lines)


def _recorded(client: Any, run_id: str) -> tuple[Any, Any]:
    from mlflow.exceptions import MlflowException
    from omegaconf import OmegaConf

    try:
        run = client.get_run(run_id)
        with tempfile.TemporaryDirectory(prefix="policy-topics-rerun-") as tmp:
            config = OmegaConf.load(client.download_artifacts(run_id, "config.yaml", tmp))
    except MlflowException as exc:
        raise RunNotFoundError(f"no run {run_id} with a recorded config.yaml in {client.tracking_uri} "
                               f"({exc.message.splitlines()[0]}); copy the run id from the MLflow UI or "
                               "the train summary") from None
    except OSError as exc:
        raise RunNotFoundError(f"run {run_id} has no readable config.yaml ({exc}); only training runs "
                               "can be re-run") from None
    return run, config


def _differences(old: Any, new: Any) -> list[str]:
    notes = []
    if old.data.params.get("data.fingerprint") != new.data.params.get("data.fingerprint"):
        notes.append(f"data fingerprint {old.data.params.get('data.fingerprint')} -> "
                     f"{new.data.params.get('data.fingerprint')} (the data or its preparation changed)")
    for key in sorted(k for k in old.data.tags if k.startswith("versions.") or k == "mlflow.source.git.commit"):
        if old.data.tags[key] != new.data.tags.get(key):
            notes.append(f"{key} {old.data.tags[key]} -> {new.data.tags.get(key)}")
    if old.data.tags.get("git_dirty") == "true":
        notes.append("the original run came from a git tree with uncommitted changes")
    return notes


def _same_data_file(config: Any, original: Any, run_id: str) -> None:
    """Point a local dataset at the absolute path the run recorded (a relative ``data.path`` meant the
    folder the training ran in), refusing in one line a file that is gone or changed since."""
    from policy_topics.data.sources import file_sha256
    from policy_topics.tracking.runs import RESOLVED_PATH_PARAM

    recorded = original.data.params.get(RESOLVED_PATH_PARAM)
    if not recorded:
        return
    path, sha = Path(recorded), original.data.params.get("data.source_sha256", "")
    if not path.is_file():
        raise DataSourceError(f"run {run_id} was trained on {path}, which is not there any more; put the file "
                              f"back (sha256 {sha[:12]}...) to re-run it")
    now = file_sha256(path)
    if sha and now != sha:
        raise DataSourceError(f"{path} changed since run {run_id} was trained on it (sha256 {sha[:12]}... then, "
                              f"{now[:12]}... now), so a re-run would not repeat it; restore the file, or train anew")
    config.data.path = str(path)


def _same_sheets(config: Any, original: Any, run_id: str) -> None:
    """Point ``data.extra_coded`` at the coded sheets' absolute paths the run recorded, refusing in one line a
    sheet that is gone or changed since (see :mod:`policy_topics.tracking.loop`)."""
    from policy_topics.data.sources import file_sha256

    params, paths = original.data.params, []
    while f"loop.sheet_{len(paths)}.path" in params:
        path = Path(params[f"loop.sheet_{len(paths)}.path"])
        sha = params.get(f"loop.sheet_{len(paths)}.sha256", "")
        if not path.is_file() or file_sha256(path) != sha:
            state = "is not there any more" if not path.is_file() else "changed since"
            raise DataSourceError(f"coded sheet {path}, which run {run_id} was trained on, {state}; restore it "
                                  f"(sha256 {sha[:12]}...) to re-run the run")
        paths.append(str(path))
    if paths:
        config.data.extra_coded = paths


def rerun(run_id: str) -> RerunReport:
    """Train again from ``run_id``'s recorded config into the same store; compare the outcomes."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from policy_topics.jobs.train import run_training
    from policy_topics.paths import config_dir
    from policy_topics.tracking.registry import default_tracking_uri, tracking_client

    uri = default_tracking_uri()
    client = tracking_client(uri)
    original, config = _recorded(client, run_id)
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        here = compose("train")
    config.paths = here.paths  # this machine's folders; everything else as recorded
    config.tracking.uri = uri
    config.tracking.store_dir = str(Path(here.tracking.store_dir))
    config.tracking.register_as = None
    config.tracking.run_name = f"rerun-of-{run_id[:8]}"
    _same_data_file(config, original, run_id)
    _same_sheets(config, original, run_id)
    result = run_training(OmegaConf.create(OmegaConf.to_container(config)))
    client.set_tag(result.run_id, "rerun_of", run_id)
    repeated = client.get_run(result.run_id)
    names = sorted(k for k in original.data.metrics if k.startswith(("val_", "test_", "cv_", "oof_")))
    metrics = [(k, original.data.metrics[k], repeated.data.metrics.get(k)) for k in names]
    return RerunReport(run_id, result.run_id, metrics, _differences(original, repeated))
