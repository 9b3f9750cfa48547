"""Long documents coded paragraph by paragraph: each paragraph's topic, and the document's topic mix.

A news article or a speech is about several things; one topic for the whole text hides the rest. With
``segment="paragraphs"`` every paragraph (text between blank lines; a text without blank lines is cut at
its line breaks) is coded on its own, and the document's record gains:

- ``paragraphs``: one record per paragraph, with its ``start`` and ``end`` character offsets in the
  document's text (as given, before cleaning) beside the usual prediction fields;
- ``topic_mix``: for each topic that is some paragraph's most likely one, the ``share`` of the
  document's paragraph text (in characters; ``chars``) whose most likely topic it is, largest first,
  and ``coded_share``: the part of it in paragraphs coded at the threshold (the rest is text the model
  is unsure of, for a human coder to check). The shares add up to 1.

The document's own ``topic`` (the whole text coded at once) stays as it is.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

SEGMENTS = ("paragraphs",)
SEGMENT_FIELDS = ("paragraphs", "topic_mix")
_BLANK_LINE = re.compile(r"\n[ \t\r\f\v]*\n")
_LINE = re.compile(r"\n")


def paragraph_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each non-blank paragraph of ``text``, leading and trailing white space left out."""
    breaks = _BLANK_LINE if _BLANK_LINE.search(text) else _LINE
    spans, start = [], 0
    for match in [*breaks.finditer(text), None]:
        end = len(text) if match is None else match.start()
        piece = text[start:end]
        if piece.strip():
            left = len(piece) - len(piece.lstrip())
            spans.append((start + left, start + len(piece.rstrip())))
        if match is not None:
            start = match.end()
    return spans


def topic_mix(paragraphs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Share of the paragraphs' characters by most likely topic, and the part of it coded; largest first."""
    sizes: dict[tuple[str, int], list[int]] = defaultdict(lambda: [0, 0])
    for paragraph in paragraphs:
        best = paragraph["top_topics"][0]
        size = sizes[(best["topic"], best["code"])]
        size[0] += paragraph["end"] - paragraph["start"]
        size[1] += paragraph["end"] - paragraph["start"] if paragraph["status"] == "coded" else 0
    total = sum(chars for chars, _ in sizes.values()) or 1
    mix = [{"topic": topic, "code": code, "share": round(chars / total, 4), "coded_share": round(coded / total, 4),
            "chars": chars} for (topic, code), (chars, coded) in sizes.items()]
    return sorted(mix, key=lambda entry: (-entry["chars"], entry["code"]))


def add_paragraphs(predictor: Any, texts: Sequence[str], records: list[dict[str, Any]], top_k: int, explain: int,
                   threshold: float | None) -> None:
    """Code the paragraphs of every text (in one batch) and add ``paragraphs`` and ``topic_mix`` to its record."""
    spans = [paragraph_spans(text) for text in texts]
    pieces = [text[start:end] for text, found in zip(texts, spans, strict=True) for start, end in found]
    coded = iter(predictor.predict_records(pieces, top_k=top_k, explain=explain, threshold=threshold)
                 if pieces else [])
    for record, found in zip(records, spans, strict=True):
        paragraphs = [{"start": start, "end": end, **next(coded)} for start, end in found]
        record["paragraphs"] = paragraphs
        record["topic_mix"] = topic_mix([p for p in paragraphs if p["status"] != "empty"])
