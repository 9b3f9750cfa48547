"""MLflow's check of a model's pip requirements against the environment, without its scan of every
installed distribution: it must still find the installed versions and still warn on a mismatch."""

from __future__ import annotations

import logging

import sklearn

from policy_topics.tracking.store import skip_module_scan


class Collected(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def test_without_the_module_scan_a_wrong_pin_is_still_reported_and_a_right_one_is_not():
    from mlflow.utils import requirements_utils

    skip_module_scan()
    assert requirements_utils._MODULES_TO_PACKAGES is not None
    logger = logging.getLogger(requirements_utils.__name__)  # MLflow's loggers do not propagate to the root
    collected, level = Collected(), logger.level
    logger.addHandler(collected)
    logger.setLevel(logging.WARNING)  # a command run earlier in this process may have quieted MLflow
    try:
        requirements_utils.warn_dependency_requirement_mismatches([f"scikit-learn=={sklearn.__version__}"])
        assert collected.messages == []
        requirements_utils.warn_dependency_requirement_mismatches(["scikit-learn==0.0.1"])
    finally:
        logger.removeHandler(collected)
        logger.setLevel(level)
    assert f"scikit-learn (current: {sklearn.__version__}, required: scikit-learn==0.0.1)" in collected.messages[0]
