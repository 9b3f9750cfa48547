"""The rule that tells a batch unlike the training data, on figures that can be checked by hand."""

from __future__ import annotations

import pytest

from policy_topics.models.familiarity import CONFIDENCE_GAP, MIN_DOCS, WORD_GAP, Familiarity, warning

REFERENCE = {"unknown_words": 0.05, "confidence": 0.70, "n_docs": 400, "chosen_on": "validation documents"}


@pytest.mark.parametrize("unknown, confidence, warns", [
    (0.05, 0.70, False),
    (0.05 + WORD_GAP - 0.01, 0.70, False),
    (0.05 + WORD_GAP + 0.01, 0.70, True),
    (0.05, 0.70 - CONFIDENCE_GAP + 0.01, False),
    (0.05, 0.70 - CONFIDENCE_GAP - 0.01, True),
])
def test_a_batch_is_unlike_the_training_data_past_either_gap(unknown, confidence, warns):
    said = warning(Familiarity(unknown, confidence, 100), REFERENCE)
    assert (said is not None) == warns
    if warns:
        assert said.startswith(f"these 100 texts are unlike the training data: {unknown:.0%} of their words")


def test_too_few_texts_or_no_reference_say_nothing():
    assert warning(Familiarity(0.9, 0.1, MIN_DOCS - 1), REFERENCE) is None
    assert warning(Familiarity(0.9, 0.1, 500), None) is None
