"""Hashed n-gram features: column names for explanations that do not depend on the process."""

from __future__ import annotations

import json
import os
import subprocess
import sys

PROBE = """
import json
from policy_topics.features.hashing import build_hashing_features, hashed_ngrams
features = build_hashing_features({"word": {"n_features": 16, "ngram_range": [1, 2]}})
texts = ["tax credit for rural schools", "school lunch tax", "credit card fees and rural banks"]
print(json.dumps(hashed_ngrams(features, texts)))
"""


def names_under(seed: str) -> dict[str, str]:
    env = {**os.environ, "PYTHONHASHSEED": seed}
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True, env=env).stdout
    return json.loads(out)


def test_colliding_ngrams_name_their_column_the_same_way_whatever_the_string_hash_seed():
    first = names_under("1")
    assert len(first) > 4  # 16 columns for about 20 n-grams: collisions happen
    assert all(names_under(seed) == first for seed in ("2", "3"))
