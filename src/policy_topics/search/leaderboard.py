"""``policy-topics leaderboard``: rank the runs of an experiment or of one sweep by a metric, diff the
configs of two runs, and plot the per-topic F1 of the top runs.

The plot is written to the given file and logged to MLflow: to the sweep's parent run when a sweep is
ranked, else to a run named ``leaderboard`` (tag ``policy_topics.role=leaderboard``) in the experiment.
Parent and leaderboard runs are never ranked themselves.
"""

from __future__ import annotations

import io
import math
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from policy_topics.errors import RunNotFoundError
from policy_topics.search.trials import BEST_TAG, ROLE_TAG, TRIAL_TAG, children_of

# Params that say where a run was logged or how a sweep ran, not what the model was.
_NOT_KEY_PARAMS = ("tracking.", "paths.", "hparams_search.", "data.fingerprint", "data.source_sha256",
                   "model.estimator._target_")
_RUN_ID = re.compile(r"^[0-9a-f]{4,32}$")


@dataclass
class Scope:
    """The runs to rank: one experiment's, or one sweep's children."""

    label: str
    runs: list[Any]
    experiment_id: str
    parent: Any | None = None


def _names(items: list[str], limit: int = 12) -> str:
    shown = ", ".join(items[:limit])
    return (shown + f", ... ({len(items) - limit} more)" if len(items) > limit else shown) or "none"


def _is_ranked(run: Any) -> bool:
    return ROLE_TAG not in run.data.tags


def _sweeps(client: Any, experiment_ids: list[str]) -> list[Any]:
    if not experiment_ids:
        return []
    return client.search_runs(experiment_ids, filter_string=f"tags.`{ROLE_TAG}` = 'sweep'",
                              order_by=["attributes.start_time DESC"])


def _experiment(client: Any, name: str | None) -> Any | None:
    """The named experiment; without a name, the only experiment that has runs."""
    experiments = client.search_experiments()
    if name is not None:
        found = next((e for e in experiments if e.name == name), None)
        if found is None:
            raise RunNotFoundError(f"unknown experiment '{name}'; experiments: "
                                   f"{_names(sorted(e.name for e in experiments))}")
        return found
    used = [e for e in experiments if client.search_runs([e.experiment_id], max_results=1)]
    if len(used) == 1:
        return used[0]
    if not used:
        raise RunNotFoundError("no runs in this store yet: train one (policy-topics train)")
    names = _names(sorted(e.name for e in used))
    raise RunNotFoundError(f"several experiments have runs: pass --experiment NAME ({names})")


def select(client: Any, experiment: str | None, sweep: str | None) -> Scope:
    """The runs of ``sweep`` (a parent run id or ``latest``), else of ``experiment``."""
    if sweep is None:
        exp = _experiment(client, experiment)
        runs = [r for r in client.search_runs([exp.experiment_id], max_results=50_000) if _is_ranked(r)]
        return Scope(f"experiment '{exp.name}'", runs, exp.experiment_id)
    ids = [_experiment(client, experiment).experiment_id] if experiment else \
        [e.experiment_id for e in client.search_experiments()]
    sweeps = _sweeps(client, ids)
    if sweep == "latest":
        if not sweeps:
            raise RunNotFoundError("no sweep in this store yet; run one, e.g. "
                                   "policy-topics train -m hparams_search=optuna")
        parent = sweeps[0]
    else:
        parent = next((s for s in sweeps if s.info.run_id.startswith(sweep)), None) if _RUN_ID.match(sweep) else None
        if parent is None:
            listed = [f"{s.info.run_id} ({s.info.run_name})" for s in sweeps]
            raise RunNotFoundError(f"sweep '{sweep}' not found; sweeps: {_names(listed, 5)}; or use --sweep latest")
    label = f"sweep {parent.info.run_id} ({parent.info.run_name})"
    return Scope(label, children_of(client, parent.info.run_id), parent.info.experiment_id, parent)


def rank(runs: list[Any], metric: str) -> list[Any]:
    """Runs that logged ``metric``, best (highest) first; ties in trial order, then start order."""
    scored = [r for r in runs if metric in r.data.metrics and not math.isnan(r.data.metrics[metric])]
    if not scored:
        metrics = sorted({m for r in runs for m in r.data.metrics if not m.startswith(("timing/", "time_"))})
        raise RunNotFoundError(f"no run here logged metric '{metric}'; metrics: {_names(metrics, 20)}")
    return sorted(scored, key=lambda r: (-r.data.metrics[metric], int(r.data.tags.get(TRIAL_TAG, 0)),
                                         r.info.start_time))


def key_params(runs: list[Any], searched: list[str] | None = None) -> list[str]:
    """The params that tell these runs apart: a sweep's searched keys, else those that vary (a model's own
    parameters only when they vary between runs of that model), and always the model's name."""
    keys = sorted({k for r in runs for k in r.data.params if not k.startswith(_NOT_KEY_PARAMS)})

    def varies(key: str, group: list[Any]) -> bool:
        return len({r.data.params.get(key) for r in group}) > 1

    by_model: dict[str, list[Any]] = {}
    for run in runs:
        by_model.setdefault(run.data.params.get("model.name", ""), []).append(run)
    chosen = [k for k in keys if (k in (searched or [])) or (
        any(varies(k, group) for group in by_model.values()) if k.startswith("model.") else varies(k, runs))]
    return ["model.name", *(k for k in chosen if k != "model.name")]


def searched_keys(parent: Any | None) -> list[str] | None:
    """The config keys a sweep searched, from its parent run's ``search.*`` params."""
    if parent is None:
        return None
    models = {k.split(".")[1] for k in parent.data.params if k.startswith("search.") and k.count(".") > 2
              and not k.startswith(("search.model.", "search.features."))}
    keys = []
    for key in parent.data.params:
        if key.startswith("search."):
            rest = key.removeprefix("search.")
            head, _, tail = rest.partition(".")
            keys.append(tail if head in models else rest)
    return keys


def short_names(keys: list[str]) -> dict[str, str]:
    """Column names: model.estimator.C -> C, features.word.min_df -> word.min_df, others as they are."""
    return {k: k.removeprefix("model.estimator.").removeprefix("features.") for k in keys}


def _value(text: str | None) -> str:
    if text is None:
        return "-"
    try:
        number = float(text)
    except ValueError:
        return text if len(text) <= 24 else text[:21] + "..."
    return text if number.is_integer() and "." not in text else f"{number:.4g}"


def table(runs: list[Any], metric: str, searched: list[str] | None = None) -> pd.DataFrame:
    """One row per run: rank, run id and name, the metric, macro-F1 of each split, the key params."""
    keys = key_params(runs, searched)
    names = short_names(keys)
    names["model.name"] = "model"
    rows = []
    for position, run in enumerate(runs, start=1):
        metrics = run.data.metrics
        row = {"rank": position, "run_id": run.info.run_id, "run": run.info.run_name, metric: metrics[metric]}
        for other in ("val_macro_f1", "test_macro_f1"):
            if other != metric and any(other in r.data.metrics for r in runs):
                row[other] = metrics.get(other)
        row["best"] = "*" if run.data.tags.get(BEST_TAG) == "true" else ""
        row.update({names[k]: _value(run.data.params.get(k)) for k in keys})
        rows.append(row)
    return pd.DataFrame(rows)


def render(frame: pd.DataFrame) -> str:
    return frame.to_string(index=False, float_format=lambda v: f"{v:.4f}", na_rep="-")


def _resolve_run(client: Any, reference: str, scope: Scope) -> Any:
    from mlflow.exceptions import MlflowException

    if len(reference) == 32 and _RUN_ID.match(reference):
        try:
            return client.get_run(reference)
        except MlflowException:
            pass
    matches = [r for r in scope.runs if r.info.run_id.startswith(reference)] if _RUN_ID.match(reference) else []
    if len(matches) == 1:
        return matches[0]
    listed = [f"{r.info.run_id} ({r.info.run_name})" for r in scope.runs[:5]]
    problem = "matches several runs" if matches else "not found"
    raise RunNotFoundError(f"run '{reference}' {problem} in {scope.label}; give a full run id or a unique prefix, "
                           f"e.g. {_names(listed, 5)}")


def _columns(rows: list[tuple[str, str, str]]) -> str:
    width = max(len(r[0]) for r in rows)
    middle = max(len(r[1]) for r in rows)
    return "\n".join(f"  {a:<{width}}  {b:<{middle}}  {c}" for a, b, c in rows)


def diff(client: Any, a: str, b: str, scope: Scope) -> str:
    """Config (params; ``paths.*`` say where, not what) and headline metrics of two runs, where they differ."""
    run_a, run_b = _resolve_run(client, a, scope), _resolve_run(client, b, scope)
    pa, pb = run_a.data.params, run_b.data.params
    keys = sorted(k for k in set(pa) | set(pb) if pa.get(k) != pb.get(k) and not k.startswith("paths."))
    lines = [f"A = {run_a.info.run_id} ({run_a.info.run_name})", f"B = {run_b.info.run_id} ({run_b.info.run_name})",
             "", "config differences:"]
    rows = [("key", "A", "B"), *((k, pa.get(k, "(absent)"), pb.get(k, "(absent)")) for k in keys)]
    lines.append(_columns(rows) if keys else "  none")

    def score(run: Any, name: str) -> str:
        value = run.data.metrics.get(name)
        return "-" if value is None else f"{value:.4f}"

    metrics = sorted(m for m in set(run_a.data.metrics) | set(run_b.data.metrics)
                     if m.startswith(("val_", "test_")) and not m.endswith("n_docs"))
    if metrics:
        lines += ["", "metrics:", _columns([("metric", "A", "B"),
                                             *((m, score(run_a, m), score(run_b, m)) for m in metrics)])]
    return "\n".join(lines)


def per_topic_f1(client: Any, runs: list[Any], metric: str) -> tuple[pd.DataFrame, str]:
    """Topics x runs table of F1 from each run's ``per_topic_<split>.csv`` artifact."""
    split = "test" if metric.startswith("test_") else "validation"
    columns = {}
    with tempfile.TemporaryDirectory(prefix="policy-topics-leaderboard-") as tmp:
        for position, run in enumerate(runs, start=1):
            try:
                path = client.download_artifacts(run.info.run_id, f"per_topic_{split}.csv", tmp)
            except Exception:  # a run without the artifact (e.g. failed before logging) is left out
                continue
            frame = pd.read_csv(path, index_col="code")
            model = run.data.params.get("model.name", "?")
            label = f"#{position} {run.info.run_name}\n{model} {run.data.metrics[metric]:.3f}"
            columns[label] = frame.set_index("topic", append=True)["f1"]
    if not columns:
        raise RunNotFoundError(f"none of these runs logged per_topic_{split}.csv; nothing to plot")
    table_ = pd.DataFrame(columns).sort_index(level="code")
    table_.index = [f"{code} {topic}" for code, topic in table_.index]
    return table_, split


def plot(frame: pd.DataFrame, title: str) -> bytes:
    """A heatmap of per-topic F1 (topics x runs) with the values in the cells, as PNG bytes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows, cols = frame.shape
    fig, ax = plt.subplots(figsize=(max(6.0, 1.45 * cols + 3.5), max(4.0, 0.36 * rows + 2)))
    image = ax.imshow(frame.to_numpy(dtype=float), cmap="viridis", vmin=0, vmax=1, aspect="auto")
    ax.set_xticks(range(cols), frame.columns, fontsize=8)
    ax.set_yticks(range(rows), frame.index, fontsize=8)
    ax.xaxis.tick_top()
    for i in range(rows):
        for j in range(cols):
            value = frame.iat[i, j]
            if not math.isnan(value):
                ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=7,
                        color="black" if value > 0.6 else "white")
    ax.set_title(title, fontsize=10, pad=10)
    fig.colorbar(image, ax=ax, fraction=0.04, label="F1")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    return buffer.getvalue()


def log_plot(client: Any, scope: Scope, png: Path, frame: pd.DataFrame) -> str:
    """Log the plot and the ranking: to the sweep's parent run, else to a new leaderboard run."""
    from mlflow.utils.mlflow_tags import MLFLOW_RUN_NAME

    if scope.parent is not None:
        run_id = scope.parent.info.run_id
    else:
        run = client.create_run(scope.experiment_id, tags={ROLE_TAG: "leaderboard", MLFLOW_RUN_NAME: "leaderboard"})
        run_id = run.info.run_id
    try:
        with tempfile.TemporaryDirectory(prefix="policy-topics-leaderboard-") as tmp:
            (Path(tmp) / "per_topic_f1.png").write_bytes(png.read_bytes())
            frame.to_csv(Path(tmp) / "ranking.csv", index=False)
            client.log_artifacts(run_id, tmp, "leaderboard")
    except Exception:
        if scope.parent is None:
            client.set_terminated(run_id, "FAILED")
        raise
    if scope.parent is None:
        client.set_terminated(run_id, "FINISHED")
    return run_id
