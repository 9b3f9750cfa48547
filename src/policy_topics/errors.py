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


class TrackingError(PolicyTopicsError):
    """The MLflow tracking store cannot be reached or used."""

    exit_code = 3
