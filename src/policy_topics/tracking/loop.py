"""Rounds of people in the loop: which run a training on coded sheets came from, and its provenance.

A training run whose data has coded sheets appended (``data.extra_coded``) is tagged ``loop.parent_run`` (the run
whose model issued the sheets, from each sheet's manifest) and ``loop.round`` (the parent's round + 1; a run
without the tag is round 0). Each sheet's path and sha256 are params (``loop.sheet_<i>.path``,
``loop.sheet_<i>.sha256``), and ``data/extra_coded.json`` lists them with their row counts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

ROUND_TAG = "loop.round"
PARENT_TAG = "loop.parent_run"


@dataclass(frozen=True)
class Lineage:
    parent_run: str | None
    round: int
    note: str | None = None  # e.g. the parent run is not in this tracking store


def lineage(sheets: Sequence[Mapping[str, Any]], tracking_uri: str) -> Lineage | None:
    """The parent run and round of a training on ``sheets`` (``report["extra_coded"]`` records); None when there
    are none. Of several issuing runs, the parent is the one of the highest round (the latest of equals)."""
    if not sheets:
        return None
    ids = list(dict.fromkeys(str(s["model_run_id"]) for s in sheets if s.get("model_run_id")))
    if not ids:
        return Lineage(None, 1, "the sheets' manifests name no model run: this run is round 1")
    from mlflow.exceptions import MlflowException

    from policy_topics.tracking.store import store_client

    client = store_client(tracking_uri)
    found, missing = [], []
    for run_id in ids:
        try:
            run = client.get_run(run_id)
        except MlflowException:
            missing.append(run_id)
            continue
        found.append((int(run.data.tags.get(ROUND_TAG, 0)), run.info.start_time or 0, run_id))
    if not found:
        return Lineage(ids[0], 1, f"run {ids[0]}, whose model issued the sheets, is not in {tracking_uri}: "
                                  "this run is counted as round 1")
    rounds, _, parent = max(found)
    note = f"runs {', '.join(missing)} named by the sheets are not in this store" if missing else None
    return Lineage(parent, rounds + 1, note)


def log_lineage(found: Lineage, sheets: Sequence[Mapping[str, Any]]) -> None:
    """Tag the active run with its round and parent; the sheets' paths and digests as params and an artifact."""
    import mlflow

    mlflow.set_tags({ROUND_TAG: str(found.round), **({PARENT_TAG: found.parent_run} if found.parent_run else {})})
    params: dict[str, Any] = {}
    for i, sheet in enumerate(sheets):
        params.update({f"loop.sheet_{i}.path": sheet["path"], f"loop.sheet_{i}.sha256": sheet["sha256"],
                       f"loop.sheet_{i}.rows_appended": sheet["appended"]})
    mlflow.log_params(params)
    mlflow.log_dict({"round": found.round, "parent_run": found.parent_run, "sheets": list(sheets)},
                    "data/extra_coded.json")
