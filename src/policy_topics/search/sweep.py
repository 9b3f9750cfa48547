"""Sweeps: one MLflow parent run per ``--multirun``, a child run per trial, the best trial marked and
written out as an experiment preset.

Hydra calls :class:`SweepCallback` (``hydra.callbacks`` in ``conf/train.yaml``) around every multirun,
with any sweeper (basic grid, Optuna) and any launcher (in-process, joblib, Ray). At the start it opens
the parent run; the callback object travels to the worker processes with Hydra's job context, and in
each job it puts the parent id, the trial number and the trial's overrides into ``MLFLOW_RUN_CONTEXT``,
the environment variable MLflow reads tags for every new run from. The training code stays unaware
of sweeps. A new sweep always makes a new parent, so children of different sweeps never mix.

With ``hparams_search=optuna`` the Optuna sweeper proposes the trials;
:func:`policy_topics.search.space.search_model_space` adds the drawn model's own parameters
(``hparams_search.models``) to each proposal.
"""

from __future__ import annotations

import atexit
import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from policy_topics.errors import PolicyTopicsError
from policy_topics.paths import register_resolvers
from policy_topics.reporting import reporter
from policy_topics.search.space import model_space, search_model_space
from policy_topics.search.trials import OBJECTIVE, OVERRIDES_TAG, PARENT_TAG, ROLE_TAG, TRIAL_TAG, finish_sweep

RUN_CONTEXT_ENV = "MLFLOW_RUN_CONTEXT"
# search_model_space is also reachable here, as policy_topics.sweep.search_model_space was (see _legacy).
__all__ = ["RUN_CONTEXT_ENV", "SweepCallback", "search_model_space"]
# Overrides that say where and how a sweep ran, not what a model is: left out of presets.
def _command_line_space(config: DictConfig) -> dict[str, str | None]:
    """Search ranges given as arguments (they replace the config's), and searched keys an argument fixed
    (None: not searched)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    space: dict[str, str | None] = {}
    for override in OverridesParser.create().parse_overrides(list(config.hydra.overrides.task)):
        key = override.get_key_element()
        if override.is_sweep_override():
            space[f"search.{key}"] = override.input_line.split("=", 1)[1]
        elif key in (config.hydra.sweeper.params or {}):
            space[f"search.{key}"] = None
    return space


# --- the callback ---------------------------------------------------------------------------------

class SweepCallback(Callback):
    """Groups the runs of one multirun under a parent run and marks its best trial."""

    def __init__(self) -> None:
        self.parent_run_id: str | None = None
        self.tracking_uri: str | None = None
        self._finished = False
        self._saved_context: str | None = None

    def __setstate__(self, state: dict[str, Any]) -> None:
        # Unpickled in a launcher's worker process (joblib, Ray): the job configs there use our resolvers.
        register_resolvers()
        self.__dict__.update(state)

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        with _as_cli_error():
            self._open_parent(config)

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        if self.parent_run_id is None:
            return
        self._saved_context = os.environ.get(RUN_CONTEXT_ENV)
        tags = json.loads(self._saved_context) if self._saved_context else {}
        num = int(config.hydra.job.num)
        tags.update({PARENT_TAG: self.parent_run_id, "mlflow.runName": f"trial-{num}", TRIAL_TAG: str(num),
                     OVERRIDES_TAG: json.dumps(list(config.hydra.overrides.task))})
        os.environ[RUN_CONTEXT_ENV] = json.dumps(tags)

    def on_job_end(self, config: DictConfig, job_return: Any, **kwargs: Any) -> None:
        if self.parent_run_id is None:
            return
        if self._saved_context is None:
            os.environ.pop(RUN_CONTEXT_ENV, None)
        else:
            os.environ[RUN_CONTEXT_ENV] = self._saved_context

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        if self.parent_run_id is None:
            return
        with _as_cli_error():
            try:
                lines = finish_sweep(self._client(), str(self.parent_run_id), config)
                self._finished = True
            except BaseException:
                self._abandon()
                raise
        reporter().line("\n".join(lines))

    # --- helpers

    def _client(self) -> Any:
        from policy_topics.tracking.store import store_client

        return store_client(str(self.tracking_uri))

    def _open_parent(self, config: DictConfig) -> None:
        from policy_topics import __version__
        from policy_topics.tracking.runs import git_state
        from policy_topics.tracking.store import check_reachable, experiment_id, retry_while_locked, tracking_target

        target = tracking_target(OmegaConf.to_container(config.tracking, resolve=True))  # type: ignore[arg-type]
        check_reachable(target)
        choices = config.hydra.runtime.choices
        sweeper = str(choices.get("hydra/sweeper") or "basic")
        self.tracking_uri = target.uri
        client = self._client()
        tags = {ROLE_TAG: "sweep", "dataset": str(config.data.name), "policy_topics.version": __version__,
                "policy_topics.sweep_dir": str(Path(str(config.hydra.sweep.dir)).resolve()),
                OVERRIDES_TAG: json.dumps(list(config.hydra.overrides.task)), **git_state()}
        experiment, name = experiment_id(target), f"{sweeper} sweep {time.strftime('%Y-%m-%d %H:%M:%S')}"
        run = retry_while_locked(lambda: client.create_run(experiment, run_name=name, tags=tags))
        self.parent_run_id = run.info.run_id
        atexit.register(self._abandon)
        params = {"sweeper": sweeper, "launcher": str(choices.get("hydra/launcher") or "basic"), "objective": OBJECTIVE}
        if sweeper == "optuna":
            import warnings

            import optuna

            optuna.logging.set_verbosity(optuna.logging.WARNING)  # our summary says what its INFO lines say
            warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)  # multivariate TPE
            sweep = config.hydra.sweeper
            params.update({"n_trials": sweep.n_trials, "n_jobs": sweep.n_jobs, "direction": sweep.direction,
                           "sampler": str(sweep.sampler._target_).rsplit(".", 1)[-1],
                           "seed": OmegaConf.select(sweep, "sampler.seed")})
            params.update({f"search.{k}": v for k, v in (sweep.params or {}).items()})
            params.update({f"search.{m}.{k}": v for m, ps in model_space(config).items() for k, v in ps.items()})
            params.update(_command_line_space(config))
            params = {k: v for k, v in params.items() if v is not None}
        from mlflow.entities import Param

        client.log_batch(self.parent_run_id, params=[Param(k, str(v)) for k, v in params.items()])
        reporter().line(f"sweep: parent run {self.parent_run_id} in experiment '{target.experiment}' ({target.uri}); "
              "each trial is a child run")

    def _abandon(self) -> None:
        """At exit, a sweep that did not finish leaves its parent FAILED, not RUNNING."""
        if self.parent_run_id is None or self._finished:
            return
        self._finished = True
        with suppress(Exception):  # the store itself may be what failed; nothing more to do at exit
            self._client().set_terminated(self.parent_run_id, "FAILED")


@contextmanager
def _as_cli_error() -> Iterator[None]:
    """Hydra turns a callback's exceptions into warnings and carries on; ours stop the command with the
    reporter's way of ending a command instead (the CLI's one-line error)."""
    try:
        yield
    except PolicyTopicsError as exc:
        reporter().stop(exc)
