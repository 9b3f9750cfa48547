"""MLflow: the store (reachability, lock, retries), what each run records, the model registry, and a
team's tracking server on PostgreSQL."""
