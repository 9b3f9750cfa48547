"""Evaluation: metrics and reports, coverage against accuracy, calibration, error analysis,
cross-validation intervals and learning curves. Pure computations on predictions; the jobs log them."""
