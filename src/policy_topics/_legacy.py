"""Old module paths that saved models still name, mapped to where the code lives now.

A model logged before the package was split into stage subpackages names ``policy_topics.topic_model``
in its ``mlflow_model.py`` (which MLflow runs on load) and ``policy_topics.vectorizers`` /
``policy_topics.embeddings`` in its skops file; a user's config may name ``policy_topics.sweep``. This
finder makes those imports return the modules that hold the code today, so such models load and predict
unchanged. It imports nothing until one of the old names is imported.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
from types import ModuleType
from typing import Any

MOVED = {
    "policy_topics.topic_model": "policy_topics.models.pyfunc",
    "policy_topics.vectorizers": "policy_topics.features.vectorizers",
    "policy_topics.embeddings": "policy_topics.features.embeddings",
    # configs that name the sweep callback or the search space by their old module (hydra.callbacks,
    # hydra.sweeper.custom_search_space)
    "policy_topics.sweep": "policy_topics.search.sweep",
}


class MovedModuleFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds the old names of :data:`MOVED` and loads them as their new modules (the same module object)."""

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> importlib.machinery.ModuleSpec | None:
        if fullname not in MOVED:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        return importlib.import_module(MOVED[spec.name])

    def exec_module(self, module: ModuleType) -> None:
        """The new module ran when it was imported in :meth:`create_module`."""


def install() -> None:
    """Put the finder on ``sys.meta_path`` (once)."""
    import sys

    if not any(isinstance(finder, MovedModuleFinder) for finder in sys.meta_path):
        sys.meta_path.append(MovedModuleFinder())
