"""The MLflow pyfunc model: a fitted pipeline (saved with skops) that answers in topic names.

Logged as "models from code" (``mlflow_model.py``), so MLflow does not pickle any object of ours.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mlflow.pyfunc
import pandas as pd

from policy_topics.persistence import load_pipeline
from policy_topics.prediction import predict_topics

PIPELINE_ARTIFACT = "pipeline"


def input_texts(model_input: Any) -> list[str]:
    """Texts from what pyfunc hands over: a DataFrame (``text`` or first column), Series or list."""
    if isinstance(model_input, pd.DataFrame):
        column = "text" if "text" in model_input.columns else model_input.columns[0]
        values = model_input[column].tolist()
    elif isinstance(model_input, pd.Series):
        values = model_input.tolist()
    elif isinstance(model_input, str):
        values = [model_input]
    else:
        values = list(model_input)
    return ["" if v is None else str(v) for v in values]


class TopicModel(mlflow.pyfunc.PythonModel):
    """pyfunc wrapper: ``predict`` returns ``topic``, ``code`` and ``probability`` per text."""

    def load_context(self, context: mlflow.pyfunc.PythonModelContext) -> None:
        self.pipeline = load_pipeline(Path(context.artifacts[PIPELINE_ARTIFACT]))

    # DataFrame hint: MLflow derives no schema from it, so the logged signature stays the schema.
    def predict(self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> pd.DataFrame:
        return predict_topics(self.pipeline, input_texts(model_input))
