"""The Comparative Agendas Project (CAP) major-topic codebook.

Models predict codes; people read names. Everything user-facing goes through
:func:`topic_name`, so codes stay available while names are what users see.
"""

from __future__ import annotations

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


def is_known(code: int) -> bool:
    """Whether ``code`` is a CAP major topic or a US media topic code."""
    return code in TOPICS


def topic_name(code: int) -> str:
    """The readable name of a topic code; unknown codes read as ``Unknown topic <code>``."""
    return TOPICS.get(code, f"Unknown topic {code}")


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
