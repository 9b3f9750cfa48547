"""Imported once by the fork server of :mod:`warm`: the libraries every command imports, so that its
children start with them. The CLI's quiet settings come first, as in a command: MLflow reads its logging
level when it is imported. Nothing here reads a project home, opens a store or starts a thread."""

from policy_topics.cli.output import quiet_libraries

quiet_libraries()

import mlflow  # noqa: E402
import mlflow.pyfunc  # noqa: E402
import mlflow.store.model_registry.sqlalchemy_store  # noqa: E402
import mlflow.store.tracking.sqlalchemy_store  # noqa: E402, F401
import uvicorn  # noqa: E402, F401

import policy_topics.cli.commands  # noqa: E402
import policy_topics.jobs.train  # noqa: E402
import policy_topics.serving.http  # noqa: E402, F401
from policy_topics.models.persistence import _skops_io  # noqa: E402

_skops_io()  # without torch, as the commands import it
