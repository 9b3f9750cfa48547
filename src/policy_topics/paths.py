"""Where the project's configs, shipped data, caches and MLflow store live.

Two roots, because an installed package and a checkout differ:
* resources: the configs and the shipped demo corpus (the checkout, or the installed package);
* home: caches, processed splits, the MLflow store and outputs (``$POLICY_TOPICS_HOME``, else the
  checkout, else the current directory). Tests point ``POLICY_TOPICS_HOME`` at a temp dir.
"""

from __future__ import annotations

import os
from pathlib import Path

from omegaconf import OmegaConf

PACKAGE_DIR = Path(__file__).resolve().parent
_CHECKOUT_DIR = PACKAGE_DIR.parents[1]
HOME_ENV = "POLICY_TOPICS_HOME"
MIRROR_ENV = "POLICY_TOPICS_DATA_MIRROR"


def _is_checkout() -> bool:
    return (_CHECKOUT_DIR / "conf" / "train.yaml").is_file() and (_CHECKOUT_DIR / "pyproject.toml").is_file()


def resources_dir() -> Path:
    """The folder holding ``conf/`` and ``data/demo/``."""
    return _CHECKOUT_DIR if _is_checkout() else PACKAGE_DIR


def config_dir() -> Path:
    return resources_dir() / "conf"


def home_dir() -> Path:
    """The folder for caches, the MLflow store and outputs."""
    env = os.environ.get(HOME_ENV)
    if env:
        return Path(env).expanduser().resolve()
    return _CHECKOUT_DIR if _is_checkout() else Path.cwd().resolve()


def register_resolvers() -> None:
    """Make ``${pt.resources:}`` and ``${pt.home:}`` available to the YAML configs."""
    if not OmegaConf.has_resolver("pt.resources"):
        OmegaConf.register_new_resolver("pt.resources", lambda: str(resources_dir()))
    if not OmegaConf.has_resolver("pt.home"):
        OmegaConf.register_new_resolver("pt.home", lambda: str(home_dir()))
