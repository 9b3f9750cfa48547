"""A corpus the features cannot describe is a one-line typed error with the fix, not a scikit-learn one."""

from __future__ import annotations

import pandas as pd
import pytest
from conftest import compose

from policy_topics.errors import ConfigError
from policy_topics.models.pipeline import fit_pipeline

REPEATED = pd.DataFrame({"text": [f"Irrigation subsidies for growers, part {i}" for i in range(10)]
                         + [f"Hospital staffing rules, part {i}" for i in range(10)], "label": [4] * 10 + [3] * 10})


def test_texts_that_leave_no_ngram_within_min_df_and_max_df_name_the_keys_to_change():
    with pytest.raises(ConfigError, match=r"the 20 training texts leave no n-gram .* features.char.max_df=1.0"):
        fit_pipeline(compose()["features"], compose()["model"], REPEATED)


def test_the_suggested_fix_fits():
    config = compose("features.char.max_df=1.0")
    assert fit_pipeline(config["features"], config["model"], REPEATED).predict(["hospital rules"]).tolist() == [3]
