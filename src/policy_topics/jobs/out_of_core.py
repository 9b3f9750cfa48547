"""The out-of-core training job: each split hashed once, fit on train, validation scored, refit on
train+validation, test scored, with stage timings (the counterpart of
:func:`policy_topics.jobs.train.fit_and_evaluate`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.pipeline import Pipeline

from policy_topics.models.out_of_core import (
    StreamSettings,
    Workspace,
    blocks_for,
    fit_hashed,
    hash_split,
    hashing_processes,
    score_hashed,
)


def fit_and_evaluate(container: Mapping[str, Any], split_files: Mapping[str, Path], stages: Any,
                     topics: Sequence[int]) -> tuple[Pipeline, list[Any]]:
    """The out-of-core counterpart of :func:`policy_topics.jobs.train.fit_and_evaluate`: fit on train,
    score validation, refit on train+validation (``refit``), score test; each split hashed once."""
    from policy_topics.evaluation.metrics import score

    settings = StreamSettings.from_config(container["model"]["stream"], int(container.get("seed", 0)))
    features, model = container["features"], container["model"]
    blocks = blocks_for(features)
    classes = np.asarray(sorted(int(t) for t in topics))
    score_test = container.get("evaluate_test", True)
    evaluations = []
    with Workspace(settings) as folder:
        with stages.stage("hash splits") as note, hashing_processes(settings) as executor:
            parts = {name: hash_split(name, path, blocks, settings, folder, keep_texts=name != "train",
                                      executor=executor)
                     for name, path in split_files.items()}
            note["detail"] = ", ".join(f"{name} {p.n_docs:,}" for name, p in parts.items()) + \
                f" docs in batches of {settings.batch_size:,}, {settings.workers} processes"
        train, validation = parts["train"], parts.get("validation")
        has_val = validation is not None and validation.n_docs > 0
        with stages.stage("fit") as note:
            pipeline = fit_hashed(features, model, [train], settings, classes)
            note["detail"] = f"{train.n_docs:,} docs, {settings.epochs_for(train.n_docs)} epochs"
        if has_val:
            assert validation is not None and validation.texts is not None
            with stages.stage("evaluate validation"):
                evaluations.append(score(validation.all_labels(), score_hashed(pipeline, validation),
                                         pipeline.classes_, "validation", validation.texts))
            if container["refit"]:
                with stages.stage("refit on train+val") as note:
                    pipeline = fit_hashed(features, model, [train, validation], settings, classes)
                    note["detail"] = f"{train.n_docs + validation.n_docs:,} docs"
        if score_test or not has_val:
            test = parts["test"]
            assert test.texts is not None
            with stages.stage("evaluate test"):
                evaluations.append(score(test.all_labels(), score_hashed(pipeline, test), pipeline.classes_,
                                         "test", test.texts))
    return pipeline, evaluations
