"""Experiment presets from a sweep's best trial: the trial's overrides as an experiment config
(``# @package _global_``) and as the command line that reproduces it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from omegaconf import OmegaConf

from policy_topics.paths import config_dir

PRESET_FILE = "best_experiment.yaml"

_NOT_IN_PRESET = ("hparams_search", "hydra", "tracking", "paths", "experiment")

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


def command_line(overrides: Sequence[str]) -> str:
    kept = [o for o in overrides if o.lstrip("+~").split("=")[0].split(".")[0].split("/")[0] not in _NOT_IN_PRESET]
    return " ".join(["policy-topics", "train", *(f"'{o}'" if re.search(r"[\s\[\]()*,]", o) else o for o in kept)])
