"""The one text cleaning, applied to a text before the model sees it: at training (``data.prep``) and at
prediction (the predictor, so ``predict``, the server and the pyfunc model), with the Unicode form the
training used. The same raw text therefore always gives the model the same features."""

from __future__ import annotations

import re
import unicodedata

_SPACE = re.compile(r"\s+")
DEFAULT_FORM = "NFKC"


def normalize_text(text: str, form: str = DEFAULT_FORM) -> str:
    """Unicode-normalise, turn control and format characters into spaces, collapse whitespace."""
    text = unicodedata.normalize(form, text)
    text = "".join(" " if unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") else ch for ch in text)
    return _SPACE.sub(" ", text).strip()
