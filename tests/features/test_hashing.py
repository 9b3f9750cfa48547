"""Hashed n-gram features: column names for explanations that do not depend on the process."""

from __future__ import annotations

import json
import os
import subprocess
import sys

TEXTS = ["tax credit for rural schools", "school lunch tax", "credit card fees and rural banks"]
PROBE = f"""
import json
from policy_topics.features.hashing import build_hashing_features, hashed_ngrams
features = build_hashing_features({{"word": {{"n_features": 16, "ngram_range": [1, 2]}}}})
print(json.dumps(hashed_ngrams(features, {TEXTS!r})))
"""


def test_colliding_ngrams_name_their_column_the_same_way_whatever_the_string_hash_seed():
    from policy_topics.features.hashing import build_hashing_features, hashed_ngrams

    here = hashed_ngrams(build_hashing_features({"word": {"n_features": 16, "ngram_range": [1, 2]}}), TEXTS)
    assert len(here) > 4  # 16 columns for about 20 n-grams: collisions happen
    other_seed = "2" if os.environ.get("PYTHONHASHSEED") == "1" else "1"  # never this process's seed
    env = {**os.environ, "PYTHONHASHSEED": other_seed}
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True, env=env).stdout
    assert json.loads(out) == json.loads(json.dumps(here))
