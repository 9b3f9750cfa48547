"""``policy-topics sample``: a validation sample of a target corpus, written as a coder sheet.

The sample is drawn at random with a seed: a seeded permutation of the corpus's non-empty documents, of which
the first ``n`` are taken, so a larger sample with the same seed holds the smaller one (code more later by
drawing again with a larger ``n``). Stratified (by the topic a model predicts), each topic gets a share
proportional to its size, at least one document when ``n`` allows, and the documents of each topic are
taken the same way. The sheet lists the documents in random order, so a part coded from the top is a
random part. The manifest records the design (strata and their corpus sizes) that the evaluation of the
coded sheet needs to weigh its estimates.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from policy_topics.errors import ConfigError, DataFormatError

GUESSES = 3  # the model's best guesses a sheet shows with --show-guesses
BATCH = 4096


@dataclass(frozen=True)
class Corpus:
    ids: list[str]
    texts: list[str]
    empty: int  # documents skipped for having no text


@dataclass(frozen=True)
class SampleResult:
    sheet: Path
    manifest: Path
    n: int
    corpus_size: int
    empty: int
    strata: dict[int, dict[str, Any]]


def read_corpus(source: str, column: str, id_column: str | None, encoding: str, fmt: str | None) -> Corpus:
    """The non-empty documents of a corpus file as the batch predict command reads it; ids from
    ``id_column``, else the corpus's ``id`` column when it has one, else where each document is (file:row)."""
    from policy_topics.serving.documents import Reading, read_documents

    reading = Reading(column, id_column, [], encoding, lines=True)
    if id_column is None:
        reading = Reading(column, "id" if "id" in _columns(source, reading, fmt) else None, [], encoding, lines=True)
    ids, texts, empty = [], [], 0
    for document in read_documents([], source, reading, fmt):
        if not document.text.strip():
            empty += 1
            continue
        ids.append(document.id)
        texts.append(document.text)
    repeated = pd.Series(ids)[pd.Series(ids).duplicated()].unique().tolist()
    if repeated:
        raise DataFormatError(f"ids repeat in {Path(source).name} (column {reading.id_column}): "
                              f"{', '.join(map(str, repeated[:5]))}; give an --id-column with one value per row")
    return Corpus(ids, texts, empty)


def _columns(source: str, reading: Any, fmt: str | None) -> list[str]:
    """The columns of the corpus's first document (none for a text file or folder)."""
    from policy_topics.serving.documents import Reading, read_documents

    first = next(read_documents([], source, Reading(reading.column, None, None, reading.encoding), fmt), None)
    return [] if first is None else list(first.kept)


def allocate(sizes: Mapping[int, int], n: int) -> dict[int, int]:
    """Documents per stratum: proportional to its size (largest remainders), at least one each when ``n``
    is at least the number of strata, never more than the stratum holds."""
    keys = sorted(sizes)
    size = np.array([sizes[k] for k in keys], dtype=float)
    quota = n * size / size.sum()
    counts = np.floor(quota).astype(int)
    if n >= len(keys):
        counts = np.maximum(counts, 1)
    while counts.sum() > n:  # the minimum of one pushed it over: take from the most over-served
        over = np.where(counts > 1, counts - quota, -np.inf)
        counts[int(np.argmax(over))] -= 1
    while counts.sum() < n:
        short = np.where(counts < size, quota - counts, -np.inf)
        counts[int(np.argmax(short))] += 1
    return {k: int(c) for k, c in zip(keys, counts, strict=True)}


def draw(size: int, n: int, seed: int, strata: np.ndarray | None = None) -> np.ndarray:
    """Row numbers (of ``size`` rows) of the sample in the sheet's random order: the first ``n`` of a seeded
    permutation, or per stratum the first of a seeded permutation (see :func:`allocate`), shuffled together."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(size)
    if strata is None:
        return order[:n]
    labels, counts = np.unique(strata, return_counts=True)
    allocation = allocate(dict(zip(labels.tolist(), counts.tolist(), strict=True)), n)
    ranked = strata[order]  # each stratum's rows in the order of the permutation
    picked = np.concatenate([order[ranked == h][:k] for h, k in allocation.items()])
    return picked[rng.permutation(len(picked))]


@dataclass(frozen=True)
class SampleRequest:
    """What ``policy-topics sample`` was asked for."""

    source: str
    output: Path
    n: int
    seed: int = 0
    stratify: bool = False
    model: str | None = None
    show_guesses: bool = False
    column: str = "text"
    id_column: str | None = None
    encoding: str = "utf-8"
    input_format: str | None = None

    def check(self) -> None:
        if self.n < 1:
            raise ConfigError(f"--n must be at least 1, not {self.n}")
        if (self.stratify or self.show_guesses) and not self.model:
            raise ConfigError(f"{'--stratify' if self.stratify else '--show-guesses'} needs --model MODEL (the "
                              "model whose predicted topics it uses)")
        if self.output.suffix.lower() != ".csv":
            raise ConfigError(f"--output must be a .csv file (a coder sheet), not {self.output.name}")
        if self.output.exists():
            raise ConfigError(f"{self.output} exists (it may hold codes already); choose another --output or "
                              "delete it first")


def _probabilities(predictor: Any, texts: list[str]) -> np.ndarray:
    return np.vstack([predictor.predict_proba(texts[i:i + BATCH]) for i in range(0, len(texts), BATCH)])


def _guesses(proba: np.ndarray, codes: np.ndarray) -> list[list[tuple[int, float]]]:
    best = np.argsort(-proba, axis=1)[:, :GUESSES]
    return [[(int(codes[j]), float(row[j])) for j in top] for row, top in zip(proba, best, strict=True)]


def run_sample(request: SampleRequest) -> SampleResult:
    """Draw the sample and write its coder sheet and manifest (see the module docstring)."""
    from policy_topics.data.sheets import manifest_path, write_sheet
    from policy_topics.data.sources import file_sha256
    from policy_topics.taxonomy import topic_name

    request.check()
    corpus = read_corpus(request.source, request.column, request.id_column, request.encoding, request.input_format)
    size, name = len(corpus.ids), Path(request.source).name
    if request.n > size:
        skipped = f" ({corpus.empty} empty ones skipped)" if corpus.empty else ""
        raise ConfigError(f"--n {request.n} is more than the {size} documents of {name}{skipped}; ask for at most "
                          f"--n {size}")
    model_fields: dict[str, Any] = {"model": None, "model_run_id": None}
    strata = proba = codes = None
    if request.model:
        from policy_topics.tracking.registry import load, resolve

        resolved = resolve(request.model)
        predictor = load(resolved).predictor
        model_fields = {"model": resolved.loaded, "model_run_id": resolved.run_id}
        codes = np.asarray(predictor.codes)
        if request.stratify:
            proba = _probabilities(predictor, corpus.texts)
            strata = codes[np.argmax(proba, axis=1)]
    rows = draw(size, request.n, request.seed, strata)
    frame = pd.DataFrame({"id": [corpus.ids[i] for i in rows], "text": [corpus.texts[i] for i in rows]})
    design: dict[str, Any] = {"design": "random", "strata": {}, "stratum_of": {}}
    if strata is not None:
        labels, counts = np.unique(strata, return_counts=True)
        sampled = pd.Series(strata[rows]).value_counts()
        design = {"design": "stratified", "stratum_of": {corpus.ids[i]: int(strata[i]) for i in rows},
                  "strata": {str(h): {"topic": topic_name(int(h)), "size": int(c), "sampled": int(sampled.get(h, 0))}
                             for h, c in zip(labels, counts, strict=True)}}
    guesses = None
    if request.show_guesses and codes is not None:
        sample_proba = proba[rows] if proba is not None else _probabilities(predictor, frame["text"].tolist())
        guesses = _guesses(sample_proba, codes)
    source = Path(request.source).expanduser().resolve()
    write_sheet(request.output, frame, {
        "kind": "sample", "source": str(source), "source_sha256": file_sha256(source) if source.is_file() else None,
        "column": request.column, "seed": request.seed, "n": request.n, "corpus_size": size,
        "skipped_empty": corpus.empty, "guesses_shown": guesses is not None, **model_fields, **design}, guesses)
    return SampleResult(request.output, manifest_path(request.output), request.n, size, corpus.empty,
                        design["strata"])
