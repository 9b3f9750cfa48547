"""Typed errors raised by the library; the CLI turns them into one-line messages and exit codes."""

from __future__ import annotations


class PolicyTopicsError(Exception):
    """Base class: a problem the user can fix; ``str(error)`` names the problem and the fix."""

    exit_code = 2


class ConfigError(PolicyTopicsError):
    """An unknown or invalid configuration option."""


class DataSourceError(PolicyTopicsError):
    """A dataset file is missing, unreachable or fails its checksum."""


class DataFormatError(PolicyTopicsError):
    """A dataset file cannot be read as configured (columns, encoding, format)."""


class LabelError(PolicyTopicsError):
    """A label is not a topic of the taxonomy and the configuration refuses such labels."""


class PrepError(PolicyTopicsError):
    """Cleaning or splitting cannot produce usable train/validation/test splits."""


class SheetError(PolicyTopicsError):
    """A coder sheet that does not match what was issued (ids, texts, codes or columns), or cannot be written."""


class TrackingError(PolicyTopicsError):
    """The MLflow tracking store cannot be reached or used."""

    exit_code = 3


class MissingExtraError(PolicyTopicsError):
    """A feature needs an optional extra that is not installed (the message gives the install command)."""


class ModelFileError(PolicyTopicsError):
    """A model file that is not this project's own, or was tampered with."""


class ModelNotFoundError(PolicyTopicsError):
    """The model reference names nothing in the tracking store."""


class RunNotFoundError(PolicyTopicsError):
    """An experiment, sweep, run (or a run's recorded config) or metric that the tracking store does not have."""


class RequestError(Exception):
    """An HTTP request the model server refuses: ``status`` is the response code, the message its body.
    Not a :class:`PolicyTopicsError`: it ends one request, never the command."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
