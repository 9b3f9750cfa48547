"""Sweeps: one MLflow parent run per ``--multirun``, a child run per trial, the best trial marked and
written out as an experiment preset.

Hydra calls :class:`SweepCallback` (``hydra.callbacks`` in ``conf/train.yaml``) around every multirun,
with any sweeper (basic grid, Optuna) and any launcher (in-process, joblib, Ray). At the start it opens
the parent run; the callback object travels to the worker processes with Hydra's job context, and in
each job it puts the parent id, the trial number and the trial's overrides into ``MLFLOW_RUN_CONTEXT``,
the environment variable MLflow reads tags for every new run from. The training code stays unaware
of sweeps. A new sweep always makes a new parent, so children of different sweeps never mix.

With ``hparams_search=optuna`` the Optuna sweeper proposes the trials; :func:`search_model_space` adds
the drawn model's own parameters (``hparams_search.models``) to each proposal.
"""

from __future__ import annotations

import atexit
import json
import os
import re
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from policy_topics.errors import ConfigError, PolicyTopicsError
from policy_topics.paths import config_dir, register_resolvers

OBJECTIVE = "val_macro_f1"
PARENT_TAG = "mlflow.parentRunId"
ROLE_TAG = "policy_topics.role"  # "sweep" on parent runs
TRIAL_TAG = "policy_topics.trial"
OVERRIDES_TAG = "policy_topics.overrides"  # JSON list of the trial's Hydra overrides
BEST_TAG = "policy_topics.best_trial"
PRESET_FILE = "best_experiment.yaml"
RUN_CONTEXT_ENV = "MLFLOW_RUN_CONTEXT"
# Overrides that say where and how a sweep ran, not what a model is: left out of presets.
_NOT_IN_PRESET = ("hparams_search", "hydra", "tracking", "paths", "experiment")
_PRESET_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_ABSENT = object()


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``path`` via a temp file in the same folder, so readers never see half a file."""
    if not path.parent.is_dir():
        raise ConfigError(f"folder {path.parent} does not exist; create it or choose another path")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


# --- the search space ---------------------------------------------------------------------------

def _distribution(key: str, spec: str) -> Any:
    """An Optuna distribution from Hydra sweep syntax (``choice(...)``, ``tag(log, interval(...))``)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException
    from hydra_plugins.hydra_optuna_sweeper._impl import create_optuna_distribution_from_override
    from optuna.distributions import BaseDistribution

    try:
        override = OverridesParser.create().parse_overrides([f"{key}={spec}"])[0]
        distribution = create_optuna_distribution_from_override(override)
    except (HydraException, AssertionError, NotImplementedError) as exc:
        raise ConfigError(f"hparams_search.models: cannot read {key}={spec} ({str(exc).splitlines()[0]}); "
                          "use Hydra sweep syntax, e.g. choice(a, b) or tag(log, interval(0.01, 10))") from exc
    if not isinstance(distribution, BaseDistribution):
        raise ConfigError(f"hparams_search.models: {key}={spec} is a single value, not a search range; "
                          "use choice(...), range(...) or interval(...)")
    return distribution


def _model_space(cfg: DictConfig) -> dict[str, dict[str, str]]:
    models = OmegaConf.select(cfg, "hparams_search.models") or {}
    return {str(name): {str(k): str(v) for k, v in (params or {}).items()} for name, params in models.items()}


def search_model_space(cfg: DictConfig, trial: Any) -> None:
    """Optuna ``custom_search_space``: suggest the parameters of the model this trial drew (or the
    fixed model), so each estimator is tuned on its own parameters only. With
    ``hparams_search.start_from_defaults``, the first call also queues the composed configuration itself
    as the next trial, so the search starts from the known baseline instead of only random draws."""
    import warnings

    space = _model_space(cfg)
    model = trial.params.get("model") or trial.user_attrs.get("model") or cfg.model.name
    for key, spec in space.get(str(model), {}).items():
        trial._suggest(key, _distribution(key, spec))  # the sweeper's own way of adding a parameter
    if trial.number == 0 and OmegaConf.select(cfg, "hparams_search.start_from_defaults"):
        shared = {k: d for k, d in trial.distributions.items() if not any(k in p for p in space.values())}
        own = {k: _distribution(k, spec) for k, spec in space.get(str(cfg.model.name), {}).items()}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # enqueue_trial is "experimental" in optuna 2.10
            trial.study.enqueue_trial(baseline(cfg, {**shared, **own}))


def baseline(cfg: DictConfig, distributions: Mapping[str, Any]) -> dict[str, Any]:
    """The composed config's own value of each searched parameter, where the search space holds it."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from omegaconf import ListConfig
    from optuna.distributions import CategoricalDistribution

    parser = OverridesParser.create()
    values: dict[str, Any] = {}
    for key, distribution in distributions.items():
        value = cfg.model.name if key == "model" else OmegaConf.select(cfg, key, default=_ABSENT)
        value = list(value) if isinstance(value, ListConfig) else value
        if isinstance(distribution, CategoricalDistribution):
            same = [c for c in distribution.choices if parser.parse_overrides([f"k={c}"])[0].value() == value]
            if same:
                values[key] = same[0]
        elif isinstance(value, int | float) and distribution._contains(distribution.to_internal_repr(value)):
            values[key] = value
    return values


def check_sweep(cfg: DictConfig, multirun: bool) -> None:
    """Refuse a search that could not run as asked, before Hydra starts any trial."""
    search = OmegaConf.select(cfg, "hparams_search")
    if search is None:
        return
    if not multirun:
        raise ConfigError("hparams_search runs a sweep: add --multirun (-m), e.g. "
                          "policy-topics train -m hparams_search=optuna data=uscongress")
    if not float(cfg.prep.val_size) > 0:
        raise ConfigError(f"a hyperparameter search scores trials on the validation split, but prep.val_size is "
                          f"{cfg.prep.val_size}; set prep.val_size above 0 (the test split never steers the search)")
    name = search.get("write_preset")
    if name is not None and not _PRESET_NAME.match(str(name)):
        raise ConfigError(f"hparams_search.write_preset must be a file name like uscongress_best (letters, digits, "
                          f"'_', '.', '-'), not '{name}'")
    options = sorted(p.stem for p in (config_dir() / "model").glob("*.yaml"))
    space = _model_space(cfg)
    drawn = OmegaConf.select(cfg, "hydra.sweeper.params.model")
    wanted = set(space) | (set(_distribution("model", drawn).choices) if drawn else set())
    unknown = sorted(str(m) for m in wanted - set(options))
    if unknown:
        raise ConfigError(f"hparams_search: unknown model {', '.join(unknown)}; available model options: "
                          f"{', '.join(options)}")
    seen: dict[str, tuple[str, Any]] = {}
    for model, params in space.items():
        model_cfg = OmegaConf.load(config_dir() / "model" / f"{model}.yaml")
        for key, spec in params.items():
            if key.startswith("model.") and OmegaConf.select(model_cfg, key.removeprefix("model."),
                                                             default=_ABSENT) is _ABSENT:
                raise ConfigError(f"hparams_search.models.{model}: model={model} has no key {key}; "
                                  f"see conf/model/{model}.yaml for its keys")
            distribution = _distribution(key, spec)
            first = seen.setdefault(key, (model, distribution))
            if first[1] != distribution:
                raise ConfigError(f"hparams_search.models: {key} has one range for {first[0]} and another for "
                                  f"{model}; Optuna keeps one distribution per parameter name, so give them the same")


# --- presets --------------------------------------------------------------------------------------

def preset_yaml(overrides: Sequence[str], header: str) -> str:
    """An experiment config (``# @package _global_``) that applies ``overrides``: config group choices
    become ``override /group: option`` defaults, values become nested keys."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    groups = {p.name for p in config_dir().iterdir() if p.is_dir()}
    defaults: list[str] = []
    values = OmegaConf.create({})
    for override in OverridesParser.create().parse_overrides(list(overrides)):
        key = override.key_or_group
        if key.split(".")[0].split("/")[0] in _NOT_IN_PRESET or override.is_delete():
            continue
        value = override.value()
        if key in groups:
            defaults.append(f"  - override /{key}: {value}")
        else:
            OmegaConf.update(values, key, value, force_add=True)
    lines = ["# @package _global_", *(f"# {line}" for line in header.splitlines())]
    if defaults:
        lines += ["defaults:", *defaults]
    body = OmegaConf.to_yaml(values) if len(values) else ""
    return "\n".join(lines) + "\n" + body


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


def _command_line(overrides: Sequence[str]) -> str:
    kept = [o for o in overrides if o.lstrip("+~").split("=")[0].split(".")[0].split("/")[0] not in _NOT_IN_PRESET]
    return " ".join(["policy-topics", "train", *(f"'{o}'" if re.search(r"[\s\[\]()*,]", o) else o for o in kept)])


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
                lines = self._finish(config)
            except BaseException:
                self._abandon()
                raise
        print("\n".join(lines))

    # --- helpers

    def _client(self) -> Any:
        from policy_topics.tracking import store_client

        return store_client(str(self.tracking_uri))

    def _open_parent(self, config: DictConfig) -> None:
        from policy_topics import __version__
        from policy_topics.tracking import (
            check_reachable,
            experiment_id,
            git_state,
            retry_while_locked,
            tracking_target,
        )

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
            params.update({f"search.{m}.{k}": v for m, ps in _model_space(config).items() for k, v in ps.items()})
            params.update(_command_line_space(config))
            params = {k: v for k, v in params.items() if v is not None}
        from mlflow.entities import Param

        client.log_batch(self.parent_run_id, params=[Param(k, str(v)) for k, v in params.items()])
        print(f"sweep: parent run {self.parent_run_id} in experiment '{target.experiment}' ({target.uri}); "
              "each trial is a child run")

    def _finish(self, config: DictConfig) -> list[str]:
        import pandas as pd

        client = self._client()
        parent = client.get_run(self.parent_run_id)
        children = children_of(client, str(self.parent_run_id))
        rows = [{"trial": int(r.data.tags.get(TRIAL_TAG, -1)), "run_id": r.info.run_id, "status": r.info.status,
                 OBJECTIVE: r.data.metrics.get(OBJECTIVE),
                 "overrides": " ".join(json.loads(r.data.tags.get(OVERRIDES_TAG, "[]")))} for r in children]
        table = pd.DataFrame(rows, columns=["trial", "run_id", "status", OBJECTIVE, "overrides"]).sort_values("trial")
        scored = table[(table["status"] == "FINISHED") & table[OBJECTIVE].notna()]
        failed = int((table["status"] != "FINISHED").sum())
        client.log_metric(self.parent_run_id, "n_trials", len(table))
        client.log_metric(self.parent_run_id, "n_failed_trials", failed)
        sweep_dir = Path(parent.data.tags["policy_topics.sweep_dir"])
        with tempfile.TemporaryDirectory(prefix="policy-topics-sweep-") as tmp:
            out = Path(tmp)
            table.to_csv(out / "trials.csv", index=False)
            results = sweep_dir / "optimization_results.yaml"
            if results.is_file():
                (out / results.name).write_bytes(results.read_bytes())
            lines = ["", f"sweep finished: {len(table)} trials ({failed} failed), parent run {self.parent_run_id}"]
            if len(scored):
                best = scored.loc[scored[OBJECTIVE].idxmax()]
                lines += self._mark_best(client, config, best, sweep_dir, out)
            else:
                lines.append(f"  no trial logged {OBJECTIVE} (no validation split?): no best trial marked")
            client.log_artifacts(self.parent_run_id, str(out))
        client.set_terminated(self.parent_run_id, "FINISHED")
        self._finished = True
        lines.append(f"  leaderboard  policy-topics leaderboard --sweep {self.parent_run_id}")
        return lines

    def _mark_best(self, client: Any, config: DictConfig, best: Mapping[str, Any], sweep_dir: Path,
                   out: Path) -> list[str]:
        run_id, score, trial = str(best["run_id"]), float(best[OBJECTIVE]), int(best["trial"])
        client.set_tag(run_id, BEST_TAG, "true")
        client.set_tag(self.parent_run_id, "best_run_id", run_id)
        client.set_tag(self.parent_run_id, "best_trial", str(trial))
        client.log_metric(self.parent_run_id, f"best_{OBJECTIVE}", score)
        overrides = json.loads(client.get_run(run_id).data.tags.get(OVERRIDES_TAG, "[]"))
        name = OmegaConf.select(config, "hparams_search.write_preset")
        header = (f"Best trial ({trial}) of sweep {self.parent_run_id}: {OBJECTIVE} {score:.4f} (run {run_id}).\n"
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
            lines.append(f"  reproduce    {_command_line(overrides)}")
        return lines

    def _abandon(self) -> None:
        """At exit, a sweep that did not finish leaves its parent FAILED, not RUNNING."""
        if self.parent_run_id is None or self._finished:
            return
        self._finished = True
        with suppress(Exception):  # the store itself may be what failed; nothing more to do at exit
            self._client().set_terminated(self.parent_run_id, "FAILED")


def children_of(client: Any, parent_run_id: str) -> list[Any]:
    """The child runs of a parent, in any experiment of the store."""
    experiments = [e.experiment_id for e in client.search_experiments()]
    return client.search_runs(experiments, filter_string=f"tags.`{PARENT_TAG}` = '{parent_run_id}'",
                              max_results=50_000)


@contextmanager
def _as_cli_error() -> Iterator[None]:
    """Hydra turns a callback's exceptions into warnings and carries on; ours stop the command with the
    CLI's one-line error instead."""
    try:
        yield
    except PolicyTopicsError as exc:
        from policy_topics.cli import fail

        fail(str(exc), exc.exit_code)
