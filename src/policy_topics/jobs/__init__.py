"""The jobs behind the commands: train, evaluate and rerun, the fits in worker processes, and the
analysis and model card a run writes."""
