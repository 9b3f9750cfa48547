"""The model: the scikit-learn pipeline and its calibration, its persistence (skops), out-of-core fitting,
the predictor with word-level explanations, and the MLflow pyfunc model that answers in topic names."""
