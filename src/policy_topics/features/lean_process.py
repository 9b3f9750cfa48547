"""Start-up of the out-of-core path's hashing helpers: a process that hashes texts and needs no data frames.

scikit-learn imports pandas and pyarrow whenever they are installed (``import sklearn``: about 210 MiB
resident with them, about 130 MiB without), though hashing texts into counts uses neither. This module
imports nothing heavy itself, so a helper can run :func:`without_data_frames` before it loads scikit-learn.
"""

from __future__ import annotations

import sys

DATA_FRAME_LIBRARIES = ("pandas", "pyarrow")


def without_data_frames() -> None:
    """Make the data-frame libraries unimportable in this process (``import pandas`` raises ImportError,
    which scikit-learn takes as "not installed"). For helper processes only: the caller must not need them."""
    for name in DATA_FRAME_LIBRARIES:
        if name not in sys.modules:
            sys.modules[name] = None  # type: ignore[assignment]  # the import system's "not importable"
