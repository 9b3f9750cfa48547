"""The Comparative Agendas Project (CAP) major-topic codebook.

Models predict codes; people read names. Everything user-facing goes through
:func:`topic_name`, so codes stay available while names are what users see.

National codebooks add codes of their own, and a number can mean different things in two of them (the
French laws' 27 is natural and weather disasters, the US media codebook's 27 is fires). A dataset names
such codes in its config (``data.extra_topics``); a job makes them this process's names for its duration
with :func:`use_dataset_topics`, and they win over the shared codebook below.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from policy_topics.errors import ConfigError

CAP_MAJOR_TOPICS: dict[int, str] = {
    1: "Macroeconomics",
    2: "Civil Rights",
    3: "Health",
    4: "Agriculture",
    5: "Labor",
    6: "Education",
    7: "Environment",
    8: "Energy",
    9: "Immigration",
    10: "Transportation",
    12: "Law and Crime",
    13: "Social Welfare",
    14: "Housing",
    15: "Domestic Commerce",
    16: "Defense",
    17: "Technology",
    18: "Foreign Trade",
    19: "International Affairs",
    20: "Government Operations",
    21: "Public Lands",
    23: "Culture",
    99: "Other",
}

# Extra major codes of the US media (newspaper) codebook, used e.g. by the NYT front-page data.
US_MEDIA_TOPICS: dict[int, str] = {
    24: "State and Local Government Administration",
    26: "Weather and Natural Disasters",
    27: "Fires",
    28: "Arts and Entertainment",
    29: "Sports and Recreation",
    30: "Death Notices",
    31: "Churches and Religion",
}

TOPICS: dict[int, str] = dict(sorted({**CAP_MAJOR_TOPICS, **US_MEDIA_TOPICS}.items()))

_CODE_BY_NAME: dict[str, int] = {name.casefold(): code for code, name in TOPICS.items()}

_dataset_topics: dict[int, str] = {}  # the current dataset's own names (see use_dataset_topics)


def parse_topic_names(names: Mapping[Any, Any] | None, where: str = "data.extra_topics") -> dict[int, str]:
    """``{27: "Natural and weather disasters"}`` from a config mapping (keys may be strings, as in JSON);
    a key that is no whole number, or an empty name, is a :class:`~policy_topics.errors.ConfigError`."""
    parsed: dict[int, str] = {}
    for key, name in (names or {}).items():
        try:
            code = int(str(key).strip())
        except ValueError:
            code = None
        if code is None or not str(name or "").strip():
            raise ConfigError(f"{where} maps topic codes to names, e.g. {where}.27='Natural disasters'; "
                              f"{key!r}: {name!r} is not a whole-number code with a name")
        parsed[code] = str(name).strip()
    return parsed


def use_dataset_topics(names: Mapping[Any, Any] | None) -> None:
    """Make ``names`` (code -> name, from a dataset's ``extra_topics``) this process's names for those codes,
    replacing any earlier dataset's; ``None`` or ``{}`` leaves the shared codebook alone."""
    _dataset_topics.clear()
    _dataset_topics.update(parse_topic_names(names))


@contextmanager
def named(names: Mapping[Any, Any] | None) -> Iterator[None]:
    """:func:`use_dataset_topics` for the block only, adding ``names`` to the current ones (preparing a
    pooled dataset does not change the names of the job's own)."""
    saved = dict(_dataset_topics)
    _dataset_topics.update(parse_topic_names(names))
    try:
        yield
    finally:
        _dataset_topics.clear()
        _dataset_topics.update(saved)


def dataset_topics() -> dict[int, str]:
    """The current dataset's own topic names (a copy; ``{}`` when it has none)."""
    return dict(_dataset_topics)


def is_known(code: int) -> bool:
    """Whether ``code`` is a CAP major topic, a US media topic code, or a code the dataset names."""
    return code in _dataset_topics or code in TOPICS


def topic_name(code: int) -> str:
    """The readable name of a topic code; unknown codes read as ``Unknown topic <code>``."""
    return _dataset_topics.get(code) or TOPICS.get(code, f"Unknown topic {code}")


def code_for_name(name: str) -> int | None:
    """The code of a topic name (case-insensitive), or None if no topic has that name."""
    return _CODE_BY_NAME.get(name.strip().casefold())


def major_of_subtopic(code: int) -> int | None:
    """The major topic of a CAP subtopic code (3 or 4 digits whose leading digits are a major topic:
    ``101`` -> 1, ``1205`` -> 12), or None when ``code`` is no such code."""
    if 100 <= code <= 9999 and code // 100 in CAP_MAJOR_TOPICS:
        return code // 100
    return None


def closest_name(text: str) -> str | None:
    """The topic name nearest to a misspelled one (``"Helth"`` -> ``"Health"``), or None."""
    import difflib

    names = {name.casefold(): name for name in TOPICS.values()}
    match = difflib.get_close_matches(text.strip().casefold(), list(names), n=1, cutoff=0.75)
    return names[match[0]] if match else None


def label(code: int) -> str:
    """``"3 Health"``: code and name together, for tables and plots."""
    return f"{code} {topic_name(code)}"
