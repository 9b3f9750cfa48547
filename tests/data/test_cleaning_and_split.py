import pandas as pd
import pytest

from policy_topics.data.cleaning import CleaningReport, clean, enforce_topic_sizes, parse_label, split
from policy_topics.data.prep import fingerprint
from policy_topics.data.text import normalize_text
from policy_topics.errors import ConfigError, LabelError, PrepError


def frame(rows):
    return pd.DataFrame(rows, columns=["text", "label"])


def test_normalisation_folds_unicode_controls_and_whitespace():
    assert normalize_text("  Ｆｉｓｃａｌ\u00a0policy\t\n  act\u200b ") == "Fiscal policy act"
    assert normalize_text("caf\u0065\u0301", "NFC") == "café"
    assert normalize_text("line\x00break\x1fhere") == "line break here"
    assert normalize_text(" \t\r\n ") == ""


@pytest.mark.parametrize(("cell", "code"), [(3, 3), ("3", 3), (" 12 ", 12), ("19.0", 19), ("Health", 3),
                                            ("", None), (None, None), (float("nan"), None), ("2.5", None)])
def test_labels_are_parsed_from_codes_and_topic_names(cell, code):
    assert parse_label(cell) == code


def test_cleaning_drops_empty_duplicate_and_conflicting_rows_and_reports_them():
    report = CleaningReport()
    out = clean(frame([
        ("A bill to fund rural clinics", "3"),
        ("A bill to fund  rural clinics ", "3"),      # duplicate after normalisation
        ("Tariffs on steel imports", "18"),
        ("Tariffs on steel imports", "15"),           # same text, conflicting label
        ("   ", "3"),                                 # empty
        ("Wheat price supports", ""),                 # missing label
        ("School lunch standards", "Education"),
    ]), "NFKC", "warn", "t.csv", report)
    assert sorted(out["text"]) == ["A bill to fund rural clinics", "School lunch standards"]
    assert report.rows_read == 7 and report.rows_kept == 2
    assert report.exact_duplicates == 1
    assert (report.conflicting_texts, report.conflicting_rows) == (1, 2)
    assert report.empty_texts == 1 and report.missing_labels == 1
    assert "1 exact duplicates dropped" in report.summary()


def test_label_outside_taxonomy_warns_and_keeps_or_refuses(caplog):
    rows = [("Lunar mining claims", "42"), ("Farm credit", "4")]
    report = CleaningReport()
    kept = clean(frame(rows), "NFKC", "warn", "t.csv", report)
    assert 42 in set(kept["label"]) and report.unknown_codes_kept == {42: 1}
    assert "42 (1 docs)" in caplog.text
    with pytest.raises(LabelError, match=r"outside the CAP taxonomy: 42 \(1 docs\).*data.unknown_labels=warn"):
        clean(frame(rows), "NFKC", "error", "t.csv", CleaningReport())


def test_label_that_is_neither_code_nor_name_is_refused_with_its_row():
    with pytest.raises(LabelError, match=r"label 'Astrology' \(row 2\)"):
        clean(frame([("Farm credit", "4"), ("Stars", "Astrology")]), "NFKC", "warn", "t.csv", CleaningReport())


def test_nothing_left_after_cleaning_is_an_error():
    with pytest.raises(PrepError, match="nothing left after cleaning"):
        clean(frame([("", "3"), ("  ", "4")]), "NFKC", "warn", "t.csv", CleaningReport())


def test_rare_topic_is_named_with_its_count_or_dropped_on_request():
    data = frame([(f"health doc {i}", 3) for i in range(12)] + [(f"fire doc {i}", 27) for i in range(2)]
                 + [(f"farm doc {i}", 4) for i in range(12)])
    with pytest.raises(PrepError, match=r"27 Fires has 2.*prep.rare_topics=drop"):
        enforce_topic_sizes(data, 10, "error", "t.csv", CleaningReport())
    report = CleaningReport()
    kept = enforce_topic_sizes(data, 10, "drop", "t.csv", report)
    assert set(kept["label"]) == {3, 4} and report.rare_topics_dropped == {27: 2}
    with pytest.raises(ConfigError, match=r"prep\.rare_topics"):
        enforce_topic_sizes(data, 10, "ignore", "t.csv", CleaningReport())


def balanced(n_per_topic=30, topics=(1, 3, 7, 12)):
    return frame([(f"document {t}-{i} words", t) for t in topics for i in range(n_per_topic)])


def test_split_is_stratified_seeded_and_disjoint():
    data = balanced()
    parts = split(data, 0.2, 0.1, seed=7)
    assert [len(parts[s]) for s in ("train", "validation", "test")] == [84, 12, 24]
    for part in parts.values():
        assert part["label"].value_counts().nunique() == 1  # same count of every topic
    texts = [set(parts[s]["text"]) for s in ("train", "validation", "test")]
    assert not (texts[0] & texts[2]) and not (texts[0] & texts[1]) and not (texts[1] & texts[2])
    again = split(data, 0.2, 0.1, seed=7)
    assert all(parts[s].equals(again[s]) for s in parts)
    assert not split(data, 0.2, 0.1, seed=8)["test"].equals(parts["test"])


def test_split_without_validation_and_bad_fractions():
    assert len(split(balanced(), 0.25, 0.0, seed=1)["validation"]) == 0
    with pytest.raises(ConfigError, match="test_size"):
        split(balanced(), 0.7, 0.4, seed=1)
    with pytest.raises(PrepError, match="too few for test_size"):
        split(balanced(n_per_topic=3, topics=range(1, 9)), 0.1, 0.1, seed=1)


def test_fingerprint_changes_with_source_read_options_and_prep():
    base = fingerprint("sha-a", {"encoding": "utf-8"}, {"seed": 1})
    assert base == fingerprint("sha-a", {"encoding": "utf-8"}, {"seed": 1})
    assert base != fingerprint("sha-b", {"encoding": "utf-8"}, {"seed": 1})
    assert base != fingerprint("sha-a", {"encoding": "latin-1"}, {"seed": 1})
    assert base != fingerprint("sha-a", {"encoding": "utf-8"}, {"seed": 2})
