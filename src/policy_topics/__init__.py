"""policy-topics: code political and policy texts into Comparative Agendas Project (CAP) topics.

The subpackages are the pipeline's stages, each importing only from those before it:
``data`` (find, read, clean and split a coded corpus), ``features`` (TF-IDF, hashing and embedding
blocks), ``models`` (the scikit-learn pipeline, its persistence, out-of-core fitting and the pyfunc model
that answers in topic names), ``evaluation`` (metrics, coverage, calibration, cross-validation),
``tracking`` (the MLflow store, what runs record, the model registry, a team's tracking server),
``serving`` (the HTTP model server and batch prediction), ``search`` (sweeps and the leaderboard),
``jobs`` (the train, evaluate and rerun jobs) and ``cli``. Beneath them all: ``errors``, ``paths``,
``taxonomy``, ``files`` and ``reporting``.
"""

from policy_topics import _legacy

__version__ = "0.1.0"

_legacy.install()
