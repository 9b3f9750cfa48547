from policy_topics import taxonomy


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
