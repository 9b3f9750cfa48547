"""The core install is lean: `pip install .` (and `make train`) brings no deep-learning stack, cluster
runtime, browser driver or test tool. The dependency closure of the installed `policy-topics` distribution
is walked from the installed distributions' own metadata (their Requires-Dist, markers evaluated for this
interpreter with no extra, except the extras a requirement itself asks for, such as ``ray[default]``)."""

from __future__ import annotations

import importlib.metadata as md
import re

import pytest
from packaging.requirements import Requirement

# What the core package must never pull in: these belong to the embeddings, ray, bench and dev extras.
HEAVY = {"torch", "ray", "fasttext", "fasttext-wheel", "selenium", "sentence-transformers", "pytest"}


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def closure(root: str, extras: frozenset[str] = frozenset()) -> dict[str, str | None]:
    """Every distribution that installing ``root[extras]`` requires, transitively: name -> the name of the
    distribution that first required it (None for the root). Requirements whose markers do not hold here
    are skipped; a required distribution that is not installed still counts, with no requirements of its own."""
    seen: dict[str, str | None] = {canonical(root): None}
    todo: list[tuple[str, frozenset[str]]] = [(root, extras)]
    done: set[tuple[str, frozenset[str]]] = set()
    while todo:
        name, wanted = todo.pop()
        if (canonical(name), wanted) in done:
            continue
        done.add((canonical(name), wanted))
        try:
            requires = md.distribution(name).requires or []
        except md.PackageNotFoundError:
            continue
        for line in requires:
            req = Requirement(line)
            if req.marker is not None and not any(
                    req.marker.evaluate({"extra": extra}) for extra in ("", *sorted(wanted))):
                continue
            seen.setdefault(canonical(req.name), name)
            todo.append((req.name, frozenset(req.extras)))
    return seen


def chain(found: dict[str, str | None], name: str) -> str:
    """``root -> a -> b -> name``: why a distribution is in the closure."""
    path = [name]
    while (parent := found.get(canonical(path[-1]))) is not None:
        path.append(parent)
    return " -> ".join(reversed(path))


def test_core_install_brings_none_of_the_heavy_packages():
    found = closure("policy-topics")
    assert "mlflow" in found and "scikit-learn" in found  # the walk followed the real metadata
    heavy = sorted(HEAVY & found.keys())
    assert heavy == [], "the core install pulls in " + "; ".join(chain(found, name) for name in heavy)


def test_the_check_fails_when_an_extra_is_treated_as_core():
    """The same walk over the dev extra, as if it were core, finds what the test above forbids."""
    if not any(canonical(d.metadata["Name"]) == "torch" for d in md.distributions()):
        pytest.skip("the dev extra is not installed here")
    found = closure("policy-topics", frozenset({"dev"}))
    assert {"torch", "ray", "fasttext-wheel", "selenium", "sentence-transformers", "pytest"} <= found.keys()
    assert chain(found, "torch").startswith("policy-topics -> ")
