"""The search space of a hyperparameter sweep: each model's own parameters (``hparams_search.models``)
added to the Optuna sweeper's proposals, the baseline trial, and the checks that refuse a search that
could not run as asked, before any trial starts.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from omegaconf import DictConfig, OmegaConf

from policy_topics.errors import ConfigError
from policy_topics.paths import config_dir

_PRESET_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_ABSENT = object()

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


def model_space(cfg: DictConfig) -> dict[str, dict[str, str]]:
    models = OmegaConf.select(cfg, "hparams_search.models") or {}
    return {str(name): {str(k): str(v) for k, v in (params or {}).items()} for name, params in models.items()}


def search_model_space(cfg: DictConfig, trial: Any) -> None:
    """Optuna ``custom_search_space``: suggest the parameters of the model this trial drew (or the
    fixed model), so each estimator is tuned on its own parameters only. With
    ``hparams_search.start_from_defaults``, the first call also queues the composed configuration itself
    as the next trial, so the search starts from the known baseline instead of only random draws."""
    import warnings

    space = model_space(cfg)
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
    space = model_space(cfg)
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
