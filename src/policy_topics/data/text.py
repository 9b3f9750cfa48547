"""The one text cleaning, applied to a text before the model sees it: at training (``data.prep``) and at
prediction (the predictor, so ``predict``, the server and the pyfunc model), with the Unicode form the
training used. The same raw text therefore always gives the model the same features."""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

_SPACE = re.compile(r"\s+")
_NOT_PRINTABLE_ASCII = re.compile(r"[^\x20-\x7e]")  # printable ASCII is never a control or format character
_AS_SPACE = frozenset(("Cc", "Cf", "Zl", "Zp"))
DEFAULT_FORM = "NFKC"


def normalize_text(text: str, form: str = DEFAULT_FORM) -> str:
    """Unicode-normalise, turn control and format characters into spaces, collapse whitespace.

    Only the characters outside printable ASCII have their Unicode category looked up (once each): a
    lookup for every character made cleaning a corpus of laws several times slower."""
    text = unicodedata.normalize(form, text)
    text = _NOT_PRINTABLE_ASCII.sub(lambda match: _visible(match.group()), text)
    return _SPACE.sub(" ", text).strip()


@lru_cache(maxsize=4096)
def _visible(char: str) -> str:
    return " " if unicodedata.category(char) in _AS_SPACE else char
