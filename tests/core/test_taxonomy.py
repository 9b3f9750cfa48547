import pytest

from policy_topics import taxonomy
from policy_topics.errors import ConfigError


def test_cap_major_topics_have_their_codebook_names():
    assert taxonomy.topic_name(1) == "Macroeconomics"
    assert taxonomy.topic_name(19) == "International Affairs"
    assert taxonomy.topic_name(23) == "Culture"
    assert taxonomy.topic_name(99) == "Other"
    assert len(taxonomy.CAP_MAJOR_TOPICS) == 22
    assert 11 not in taxonomy.TOPICS and 22 not in taxonomy.TOPICS and 25 not in taxonomy.TOPICS


def test_us_media_codes_are_named_too():
    assert taxonomy.topic_name(24) == "State and Local Government Administration"
    assert taxonomy.topic_name(27) == "Fires"
    assert taxonomy.topic_name(31) == "Churches and Religion"
    assert set(taxonomy.US_MEDIA_TOPICS) == {24, 26, 27, 28, 29, 30, 31}


def test_unknown_codes_read_as_unknown_and_names_map_back_to_codes():
    assert taxonomy.topic_name(42) == "Unknown topic 42"
    assert not taxonomy.is_known(42)
    assert taxonomy.code_for_name(" health ") == 3
    assert taxonomy.code_for_name("Law and Crime") == 12
    assert taxonomy.code_for_name("Astrology") is None
    assert taxonomy.label(3) == "3 Health"


@pytest.fixture(autouse=True)
def _shared_codebook():
    """Each test starts and ends with no dataset's own names."""
    taxonomy.use_dataset_topics(None)
    yield
    taxonomy.use_dataset_topics(None)


def test_a_datasets_own_codes_are_named_as_its_codebook_says_and_only_while_it_is_used():
    taxonomy.use_dataset_topics({27: "Natural and Weather Disasters", "99": "Other"})
    assert taxonomy.topic_name(27) == "Natural and Weather Disasters" and taxonomy.label(27).startswith("27 Natural")
    assert taxonomy.topic_name(28) == "Arts and Entertainment"  # codes it does not name keep the shared names
    taxonomy.use_dataset_topics({})
    assert taxonomy.topic_name(27) == "Fires"


def test_names_for_a_block_add_to_the_current_ones_and_are_undone_after_it():
    taxonomy.use_dataset_topics({27: "Natural and Weather Disasters"})
    with taxonomy.named({40: "Space"}):
        assert taxonomy.topic_name(40) == "Space" and taxonomy.is_known(40)
        assert taxonomy.topic_name(27) == "Natural and Weather Disasters"
    assert not taxonomy.is_known(40) and taxonomy.topic_name(27) == "Natural and Weather Disasters"


def test_the_french_laws_name_their_codes_27_29_99_from_the_french_codebook_never_as_us_media_codes():
    from conftest import compose

    extra = compose("data=cap_laws_fr")["data"]["extra_topics"]
    with taxonomy.named(extra):
        assert taxonomy.topic_name(27) == "Natural and Weather Disasters"
        assert taxonomy.topic_name(29) == "Sports" and taxonomy.topic_name(99) == "Other"
    for country in ("uk", "dk", "es", "hu", "br"):
        assert compose(f"data=cap_laws_{country}")["data"]["extra_topics"] == {}


@pytest.mark.parametrize("names", [{"x": "Space"}, {40: ""}, {"4.5": "Half"}])
def test_topic_names_that_are_not_code_and_name_are_a_one_line_error_naming_the_setting(names):
    with pytest.raises(ConfigError, match=r"data\.extra_topics maps topic codes to names"):
        taxonomy.use_dataset_topics(names)
