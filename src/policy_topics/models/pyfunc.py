"""The MLflow pyfunc model: a fitted pipeline (saved with skops) that answers in topic names.

Logged as "models from code" (``mlflow_model.py``), so MLflow pickles no object of ours. ``predict``
takes a DataFrame with a ``text`` column (or a list of strings) and params ``top_k``, ``explain`` (number
of n-grams to report, 0 = none) and ``threshold`` (top probability under which a text is "uncertain").
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mlflow.pyfunc
import pandas as pd

from policy_topics.data.text import DEFAULT_FORM
from policy_topics.models.persistence import load_pipeline, load_settings
from policy_topics.models.predictor import DEFAULT_THRESHOLD, DEFAULT_TOP_K, TopicPredictor

PIPELINE_ARTIFACT = "pipeline"


def params_for(threshold: float = DEFAULT_THRESHOLD) -> dict[str, Any]:
    """The pyfunc params and their defaults (the signature's): the model's own threshold by default."""
    return {"top_k": DEFAULT_TOP_K, "explain": 0, "threshold": float(threshold)}
OUTPUT_COLUMNS = ["topic", "code", "probability", "status", "top_topics", "explanation"]


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


def records_frame(records: list[dict[str, Any]]) -> pd.DataFrame:
    """Prediction records as the pyfunc output table (``explanation`` always present)."""
    return pd.DataFrame({
        "topic": pd.Series([r["topic"] for r in records], dtype=object),
        "code": pd.Series([r["code"] for r in records], dtype="Int64"),
        "probability": pd.Series([r["probability"] for r in records], dtype="float64"),
        "status": [r["status"] for r in records],
        "top_topics": [r["top_topics"] for r in records],
        "explanation": [r.get("explanation", []) for r in records],
    }, columns=OUTPUT_COLUMNS)


class TopicModel(mlflow.pyfunc.PythonModel):
    """pyfunc wrapper around :class:`~policy_topics.models.predictor.TopicPredictor`."""

    def load_context(self, context: mlflow.pyfunc.PythonModelContext) -> None:
        folder = Path(context.artifacts[PIPELINE_ARTIFACT])
        settings = load_settings(folder)
        self.predictor = TopicPredictor(load_pipeline(folder), settings.get("threshold"),
                                        settings.get("text_form", DEFAULT_FORM), settings.get("threshold_evidence"),
                                        settings.get("topic_names"))
        self.predictor.reference = settings.get("familiarity")

    # DataFrame hint: MLflow derives no schema from it, so the logged signature stays the schema.
    def predict(self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> pd.DataFrame:
        options = {**params_for(self.predictor.threshold), **(params or {})}
        records = self.predictor.predict_records(
            input_texts(model_input), top_k=int(options["top_k"]), explain=int(options["explain"]),
            threshold=float(options["threshold"]),
        )
        return records_frame(records)
