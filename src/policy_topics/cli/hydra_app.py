"""The Hydra commands (``train``, ``evaluate``): overrides are checked against the composed config before
Hydra runs, so a typo in a key or an option name gets one line that names it and the choices, not a stack
trace; each job's typed errors become the CLI's one-line messages.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Sequence
from typing import Any

from policy_topics.cli.output import fail, quiet_libraries, unexpected, use_terminal
from policy_topics.errors import PolicyTopicsError
from policy_topics.paths import config_dir

# Hydra flags that take a value; everything else that starts with '-' takes none.
_HYDRA_VALUE_FLAGS = {"--config-path", "-cp", "--config-name", "-cn", "--config-dir", "-cd", "--cfg", "-c",
                      "--package", "-p", "--info", "-i", "--experimental-rerun"}


def overrides_in(args: Sequence[str]) -> list[str]:
    """The Hydra overrides among the command-line arguments (flags and their values removed)."""
    out: list[str] = []
    skip = False
    for arg in args:
        if skip:
            skip = False
        elif arg.startswith("-"):
            skip = arg in _HYDRA_VALUE_FLAGS and arg not in ("--info", "-i")
        else:
            out.append(arg)
    return out


def _first_choice(overrides: list[str]) -> list[str]:
    """Replace sweeps (``a,b``, ``range(...)``) with their first value, dropping Optuna intervals."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parsed = OverridesParser.create().parse_overrides(overrides)
    single: list[str] = []
    for override in parsed:
        if not override.is_sweep_override():
            single.append(override.input_line)
            continue
        if override.is_interval_sweep():
            continue
        first = next(iter(override.sweep_string_iterator()), None)
        if first is not None:
            single.append(f"{override.get_key_element()}={first}")
    return single


def check_overrides(config_name: str, args: Sequence[str]) -> str | None:
    """Compose the config with the given overrides; a one-line problem description if it fails."""
    from hydra import compose, initialize_config_dir
    from hydra.errors import HydraException, MissingConfigException
    from omegaconf.errors import OmegaConfBaseException

    from policy_topics.search.space import check_sweep

    try:
        overrides = _first_choice(overrides_in(args))
        with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
            cfg = compose(config_name=config_name, overrides=overrides, return_hydra_config=True)
        if not {"--cfg", "-c", "--info", "-i", "--help", "-h"} & set(args):  # jobs will run
            multirun = bool({"-m", "--multirun"} & set(args)) or getattr(cfg.hydra.mode, "name", "") == "MULTIRUN"
            check_sweep(cfg, multirun)
    except MissingConfigException as exc:
        return _missing_option(exc)
    except (HydraException, OmegaConfBaseException) as exc:
        return _bad_override(exc)
    except PolicyTopicsError as exc:
        return str(exc)
    return None


def _missing_option(exc: Exception) -> str:
    text = str(exc)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    head = lines[0]
    options = [line for line in lines[1:] if not line.endswith(":") and " " not in line]
    group = ""
    if "Could not find '" in head:
        wanted = head.split("Could not find '", 1)[1].split("'", 1)[0]
        group, _, option = wanted.rpartition("/")
        return (f"unknown option {group}={option}; available {group} options: {', '.join(options) or 'none'}")
    return f"{head}{'; available: ' + ', '.join(options) if options else ''}"


def _bad_override(exc: Exception) -> str:
    from omegaconf.errors import ConfigAttributeError, ConfigKeyError

    cause: BaseException | None = exc
    while cause is not None and not isinstance(cause, ConfigKeyError | ConfigAttributeError):
        cause = cause.__cause__ or cause.__context__
    if cause is not None:
        key = getattr(cause, "full_key", None) or str(cause)
        return (f"unknown config key '{key}': check the spelling (`policy-topics train --cfg job` prints "
                f"every key), or add a new key with +{key}=VALUE")
    first = next((line.strip() for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
    return f"invalid override: {first}"


def run_hydra_app(config_name: str, task: Callable[[Any], Any], prog: str, args: Sequence[str]) -> Any:
    """Validate ``args`` and hand them to a Hydra app that runs ``task(cfg)`` per job."""
    import hydra

    problem = check_overrides(config_name, args)
    if problem:
        fail(problem)

    @hydra.main(config_path=str(config_dir()), config_name=config_name, version_base="1.3")
    def app(cfg: Any) -> Any:
        quiet_libraries()  # again: a launcher may run this job in a worker process (joblib, Ray)
        use_terminal()
        try:
            return task(cfg)
        except PolicyTopicsError as exc:
            fail(str(exc), exc.exit_code)
        except KeyboardInterrupt:
            fail("interrupted (the MLflow run, if one was open, is marked KILLED)", 130)
        except Exception as exc:
            from omegaconf.errors import MissingMandatoryValue, OmegaConfBaseException

            missing = re.search(r"Missing mandatory value: ([\w.]+)", str(exc))
            if isinstance(exc, MissingMandatoryValue) or missing:
                key = getattr(exc, "full_key", "?") if isinstance(exc, MissingMandatoryValue) else missing.group(1)
                fail(f"{key} is required here and has no value; add {key}=... to the command, or pick a "
                     f"config that sets it (policy-topics train --help lists them)")
            if isinstance(exc, OmegaConfBaseException):
                fail(f"config: {str(exc).splitlines()[0]}")
            unexpected(exc)

    saved = sys.argv
    sys.argv = [prog, *args]
    try:
        return app()
    finally:
        sys.argv = saved


def train_task(cfg: Any) -> float | None:
    """One training job; returns validation macro-F1 for sweepers to maximise."""
    from policy_topics.jobs.train import run_training, summary

    result = run_training(cfg)
    print(summary(result))
    m = result.metrics
    return m.get("cv_macro_f1_mean", m.get("val_macro_f1", m.get("test_macro_f1")))


def evaluate_task(cfg: Any) -> float:
    """One evaluation job; returns the shared-topic macro-F1 (for sweeps over datasets or models), or with
    ``coded_sample`` the macro-F1 estimated from the coded sample."""
    if cfg.get("coded_sample"):
        from hydra.core.hydra_config import HydraConfig

        from policy_topics.jobs import coded_sample

        found = coded_sample.run_coded_sample(cfg, list(HydraConfig.get().overrides.task))
        print(coded_sample.summary(found))
        return found.metrics["sample_macro_f1"]
    from policy_topics.jobs.evaluate import run_evaluation, summary

    result = run_evaluation(cfg)
    print(summary(result))
    return result.metrics["shared_macro_f1"]
