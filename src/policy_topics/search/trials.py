"""What a sweep's trials left in the store: the tags that mark them, the child runs of a parent, and the
end of a sweep (the trials table on the parent run, the best trial marked and written out as a preset)."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from policy_topics.files import write_atomic
from policy_topics.paths import config_dir
from policy_topics.search.presets import PRESET_FILE, command_line, preset_yaml

OBJECTIVE = "val_macro_f1"
PARENT_TAG = "mlflow.parentRunId"
ROLE_TAG = "policy_topics.role"  # "sweep" on parent runs
TRIAL_TAG = "policy_topics.trial"
OVERRIDES_TAG = "policy_topics.overrides"  # JSON list of the trial's Hydra overrides
BEST_TAG = "policy_topics.best_trial"


def children_of(client: Any, parent_run_id: str) -> list[Any]:
    """The child runs of a parent, in any experiment of the store."""
    experiments = [e.experiment_id for e in client.search_experiments()]
    return client.search_runs(experiments, filter_string=f"tags.`{PARENT_TAG}` = '{parent_run_id}'",
                              max_results=50_000)


def finish_sweep(client: Any, parent_run_id: str, config: DictConfig) -> list[str]:
    """Log the trials table (and Optuna's results) on the parent run, mark the best trial, write its preset,
    end the parent run FINISHED; the summary lines for the terminal."""
    import pandas as pd

    parent = client.get_run(parent_run_id)
    children = children_of(client, parent_run_id)
    rows = [{"trial": int(r.data.tags.get(TRIAL_TAG, -1)), "run_id": r.info.run_id, "status": r.info.status,
             OBJECTIVE: r.data.metrics.get(OBJECTIVE),
             "overrides": " ".join(json.loads(r.data.tags.get(OVERRIDES_TAG, "[]")))} for r in children]
    table = pd.DataFrame(rows, columns=["trial", "run_id", "status", OBJECTIVE, "overrides"]).sort_values("trial")
    scored = table[(table["status"] == "FINISHED") & table[OBJECTIVE].notna()]
    failed = int((table["status"] != "FINISHED").sum())
    client.log_metric(parent_run_id, "n_trials", len(table))
    client.log_metric(parent_run_id, "n_failed_trials", failed)
    sweep_dir = Path(parent.data.tags["policy_topics.sweep_dir"])
    with tempfile.TemporaryDirectory(prefix="policy-topics-sweep-") as tmp:
        out = Path(tmp)
        table.to_csv(out / "trials.csv", index=False)
        results = sweep_dir / "optimization_results.yaml"
        if results.is_file():
            (out / results.name).write_bytes(results.read_bytes())
        lines = ["", f"sweep finished: {len(table)} trials ({failed} failed), parent run {parent_run_id}"]
        if len(scored):
            best = scored.loc[scored[OBJECTIVE].idxmax()]
            lines += _mark_best(client, parent_run_id, config, best, sweep_dir, out)
        else:
            lines.append(f"  no trial logged {OBJECTIVE} (no validation split?): no best trial marked")
        client.log_artifacts(parent_run_id, str(out))
    client.set_terminated(parent_run_id, "FINISHED")
    lines.append(f"  leaderboard  policy-topics leaderboard --sweep {parent_run_id}")
    return lines

def _mark_best(client: Any, parent_run_id: str, config: DictConfig, best: Mapping[str, Any], sweep_dir: Path,
               out: Path) -> list[str]:
    run_id, score, trial = str(best["run_id"]), float(best[OBJECTIVE]), int(best["trial"])
    client.set_tag(run_id, BEST_TAG, "true")
    client.set_tag(parent_run_id, "best_run_id", run_id)
    client.set_tag(parent_run_id, "best_trial", str(trial))
    client.log_metric(parent_run_id, f"best_{OBJECTIVE}", score)
    overrides = json.loads(client.get_run(run_id).data.tags.get(OVERRIDES_TAG, "[]"))
    name = OmegaConf.select(config, "hparams_search.write_preset")
    header = (f"Best trial ({trial}) of sweep {parent_run_id}: {OBJECTIVE} {score:.4f} (run {run_id}).\n"
              f"Reproduce: policy-topics train experiment={name or 'NAME'}")
    text = preset_yaml(overrides, header).encode()
    (out / PRESET_FILE).write_bytes(text)
    sweep_dir.mkdir(parents=True, exist_ok=True)
    write_atomic(sweep_dir / PRESET_FILE, text)
    lines = [f"  best trial   {trial}: {OBJECTIVE} {score:.4f} (run {run_id})",
             f"  preset       {sweep_dir / PRESET_FILE} (also on the parent run)"]
    if name:
        preset = config_dir() / "experiment" / f"{name}.yaml"
        preset.parent.mkdir(exist_ok=True)
        write_atomic(preset, text)
        lines += [f"  written to   {preset}", f"  reproduce    policy-topics train experiment={name}"]
    else:
        lines.append(f"  reproduce    {command_line(overrides)}")
    return lines
