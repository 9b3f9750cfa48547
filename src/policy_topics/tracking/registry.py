"""Which model to use: run ids, ``models:/`` URIs, registry aliases, and the champion by default.

Resolving happens before a server starts or a batch is read, so an unknown reference fails at once with
a line that lists what the store has.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from policy_topics.errors import ModelNotFoundError, PolicyTopicsError
from policy_topics.paths import home_dir
from policy_topics.tracking.store import skip_module_scan, store_client, tracking_target

CHAMPION = "champion"
_RUN_ID = re.compile(r"^[0-9a-f]{32}$")


def default_tracking_uri() -> str:
    """``MLFLOW_TRACKING_URI``, else the project's SQLite store (as training uses it)."""
    return tracking_target({"uri": os.environ.get("MLFLOW_TRACKING_URI"), "store_dir": home_dir() / "mlruns",
                            "experiment": "-"}).uri


def tracking_client(tracking_uri: str) -> Any:
    import mlflow

    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    return store_client(tracking_uri, registry_uri=tracking_uri)


def available(client: Any) -> str:
    """``name (versions 1, 2; champion -> 2)`` for every registered model, for error messages."""
    parts = []
    for model in client.search_registered_models():
        versions = sorted(int(v.version) for v in client.search_model_versions(f"name='{model.name}'"))
        aliases = ", ".join(f"{a} -> {v}" for a, v in sorted(model.aliases.items()))
        parts.append(f"{model.name} (versions {', '.join(map(str, versions))}{'; ' + aliases if aliases else ''})")
    return "; ".join(parts) or "none"


def headline_score(metrics: dict[str, float]) -> dict[str, Any]:
    """The macro-F1 a run is known by, and where it comes from: the test split, or the mean over the
    folds of a cross-validated run (``k-fold cv``); None for neither."""
    if "test_macro_f1" in metrics:
        return {"macro_f1": metrics["test_macro_f1"], "scored_on": "test"}
    if "cv_macro_f1_mean" in metrics:
        return {"macro_f1": metrics["cv_macro_f1_mean"], "scored_on": f"{int(metrics.get('cv_folds', 0))}-fold cv"}
    return {"macro_f1": None, "scored_on": ""}


def version_table(client: Any) -> list[dict[str, Any]]:
    """One row per registered version: name, version, aliases, run and its macro-F1 (see
    :func:`headline_score`)."""
    rows = []
    for model in client.search_registered_models():
        aliases: dict[str, list[str]] = {}
        for alias, version in model.aliases.items():
            aliases.setdefault(str(version), []).append(alias)
        for version in sorted(client.search_model_versions(f"name='{model.name}'"), key=lambda v: int(v.version)):
            metrics = client.get_run(version.run_id).data.metrics if version.run_id else {}
            rows.append({"name": model.name, "version": int(version.version),
                         "aliases": ",".join(sorted(aliases.get(str(version.version), []))),
                         "run_id": version.run_id, **headline_score(metrics)})
    return rows


@dataclass(frozen=True)
class ResolvedModel:
    uri: str
    run_id: str | None
    tracking_uri: str
    version: str | None = None  # the registered version an alias pointed at when resolved

    @property
    def loaded(self) -> str:
        """What was loaded: ``models:/NAME/VERSION`` for an alias, else the URI as given."""
        if self.version and "@" in self.uri:
            return f"{self.uri.split('@', 1)[0]}/{self.version}"
        return self.uri


def resolve(reference: str | None, tracking_uri: str | None = None) -> ResolvedModel:
    """Turn a run id, ``models:/NAME/VERSION``, ``models:/NAME@ALIAS`` (or the same without ``models:/``),
    ``NAME`` (its champion) or nothing (the only champion) into a loadable URI, or fail listing what
    exists."""
    from mlflow.exceptions import MlflowException

    tracking_uri = tracking_uri or default_tracking_uri()
    client = tracking_client(tracking_uri)
    try:
        if reference and _RUN_ID.match(reference):
            run = client.get_run(reference)
            uri = run.data.tags.get("model_uri")
            if not uri:
                raise ModelNotFoundError(f"run {reference} has no logged model; use another run or a models:/ URI")
            return ResolvedModel(uri, reference, tracking_uri)
        if not reference:
            champions = [m.name for m in client.search_registered_models() if CHAMPION in m.aliases]
            if len(champions) > 1:
                raise ModelNotFoundError(
                    f"several registered models have the alias '{CHAMPION}' in {tracking_uri}: "
                    f"{', '.join(sorted(champions))}; pick one with --model NAME, e.g. --model {sorted(champions)[0]}")
            if not champions:
                raise ModelNotFoundError(
                    f"no registered model has the alias '{CHAMPION}' in {tracking_uri}; pass --model NAME@ALIAS or "
                    f"promote one (policy-topics promote NAME VERSION); registered: {available(client)}")
            reference = f"models:/{champions[0]}@{CHAMPION}"
        else:
            reference = model_uri(reference)
        run_id, version = _check(client, reference)
        return ResolvedModel(reference, run_id, tracking_uri, version)
    except MlflowException as exc:
        raise ModelNotFoundError(
            f"model {reference!r} not found in {tracking_uri} ({exc.message.splitlines()[0]}); "
            f"registered: {available(client)}") from exc


def model_uri(reference: str) -> str:
    """``NAME@ALIAS`` -> ``models:/NAME@ALIAS``, ``NAME/VERSION`` -> ``models:/NAME/VERSION``, ``NAME`` ->
    ``models:/NAME@champion``; ``models:/`` and ``runs:/`` URIs as they are."""
    if reference.startswith(("models:/", "runs:/")):
        return reference
    if "@" in reference or re.fullmatch(r"[^/]+/\d+", reference):
        return f"models:/{reference}"
    return f"models:/{reference}@{CHAMPION}"


def _check(client: Any, uri: str) -> tuple[str | None, str | None]:
    """Look the URI up (so a typo fails now): the run that logged it and, for a registered model, the
    version it names."""
    if uri.startswith("runs:/"):
        return uri.removeprefix("runs:/").split("/", 1)[0], None
    target = uri.removeprefix("models:/")
    if target.startswith("m-"):
        import mlflow

        return mlflow.get_logged_model(target.split("/", 1)[0]).source_run_id, None
    if "@" in target:
        name, alias = target.split("@", 1)
        found = client.get_model_version_by_alias(name, alias)
        return found.run_id, str(found.version)
    name, _, version = target.rpartition("/")
    return client.get_model_version(name, version).run_id, version


def promote(name: str, version: str, alias: str = CHAMPION, tracking_uri: str | None = None) -> str:
    """Point ``alias`` at ``version`` of registered model ``name``."""
    from mlflow.exceptions import MlflowException

    tracking_uri = tracking_uri or default_tracking_uri()
    client = tracking_client(tracking_uri)
    try:
        client.get_model_version(name, version)
        client.set_registered_model_alias(name, alias, version)
    except MlflowException as exc:
        raise ModelNotFoundError(
            f"cannot point {name}@{alias} at version {version}: {exc.message.splitlines()[0]}; "
            f"registered: {available(client)}") from exc
    return f"models:/{name}@{alias}"


def _check_digest(local: Path, uri: str, run: Any) -> None:
    """Refuse model files that differ from the digest the training run recorded in the tracking store."""
    from policy_topics.errors import ModelFileError
    from policy_topics.models.persistence import digest
    from policy_topics.models.pyfunc import PIPELINE_ARTIFACT
    from policy_topics.tracking.runs import MODEL_DIGEST_TAG

    expected = run.data.tags.get(MODEL_DIGEST_TAG) if run is not None else None
    folder = local / "artifacts" / PIPELINE_ARTIFACT
    if not folder.is_dir():
        raise ModelFileError(f"{uri} is not a policy-topics model (no {PIPELINE_ARTIFACT} artifact); "
                             "train one with policy-topics train")
    if expected is None:
        raise ModelFileError(f"{uri}: its run records no {MODEL_DIGEST_TAG}, so its files cannot be checked; "
                             "retrain it with this version of policy-topics")
    try:
        actual = digest(folder)
    except OSError as exc:
        raise ModelFileError(f"{uri}: model files missing ({exc}); retrain the model") from None
    if actual != expected:
        raise ModelFileError(f"{uri}: model files differ from the digest recorded at training "
                             f"(run {run.info.run_id}); they were changed afterwards: restore them or retrain")


@dataclass
class LoadedModel:
    """A model ready to predict, with what the metadata endpoint and the batch command report."""

    predictor: Any  # policy_topics.models.predictor.TopicPredictor
    metadata: dict[str, Any]


def load(resolved: ResolvedModel, threshold: float | None = None) -> LoadedModel:
    """Load a resolved model through MLflow and check that it is a policy-topics model."""
    import mlflow

    from policy_topics.models.pyfunc import TopicModel

    run_id = resolved.run_id
    run = tracking_client(resolved.tracking_uri).get_run(run_id) if run_id else None
    try:
        local = Path(mlflow.artifacts.download_artifacts(artifact_uri=resolved.uri))
        _check_digest(local, resolved.uri, run)
        skip_module_scan()
        model = mlflow.pyfunc.load_model(str(local))
    except PolicyTopicsError:
        raise
    except Exception as exc:
        raise ModelNotFoundError(f"cannot load {resolved.uri}: {str(exc).splitlines()[0]}") from exc
    python_model = model.unwrap_python_model()
    if not isinstance(python_model, TopicModel):
        raise ModelNotFoundError(f"{resolved.uri} is not a policy-topics model; train one with policy-topics train")
    predictor = python_model.predictor
    if threshold is not None:
        predictor.set_threshold(threshold)
    metrics: dict[str, float] = {}
    params: dict[str, str] = {}
    if run is not None:
        metrics = {k: v for k, v in run.data.metrics.items() if k.startswith(("test_", "val_"))}
        params = run.data.params
    metadata = {
        "model_uri": resolved.uri, "loaded": resolved.loaded, "version": resolved.version, "run_id": run_id,
        "dataset": params.get("data.name"),
        "model": params.get("model.name"), "threshold": predictor.threshold,
        "threshold_source": predictor.threshold_source, "threshold_note": predictor.threshold_note(),
        "threshold_evidence": predictor.evidence, "familiarity_reference": predictor.reference,
        "topics": predictor.topics, "metrics": metrics,
    }
    return LoadedModel(predictor, metadata)
