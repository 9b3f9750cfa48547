"""Long documents coded paragraph by paragraph: the paragraphs found, the topic mix, and `predict
--segment paragraphs` on the Pakistan-US seed article."""

from __future__ import annotations

import json

import pytest
from conftest import REPO, call_cli

from policy_topics.serving.segments import paragraph_spans, topic_mix

SEED = REPO / "seeds" / "19-pakistan-us-foreign-ministers.txt"


def test_paragraphs_are_the_text_between_blank_lines_with_their_offsets():
    text = "Headline\n\n  First paragraph,\nstill the first.  \n \t\nSecond one.\n\n\n"
    spans = paragraph_spans(text)
    assert [text[a:b] for a, b in spans] == ["Headline", "First paragraph,\nstill the first.", "Second one."]


def test_a_text_without_blank_lines_is_cut_at_its_line_breaks():
    text = "One line\nanother line\r\n"
    assert [text[a:b] for a, b in paragraph_spans(text)] == ["One line", "another line"]
    assert paragraph_spans("") == [] and paragraph_spans(" \n\n ") == []


def test_the_mix_is_the_share_of_characters_by_most_likely_topic_and_the_part_coded():
    def paragraph(start: int, end: int, topic: str, code: int, status: str) -> dict:
        return {"start": start, "end": end, "status": status, "top_topics": [{"topic": topic, "code": code}]}

    mix = topic_mix([paragraph(0, 30, "Defense", 16, "coded"), paragraph(32, 42, "Foreign Trade", 18, "uncertain"),
                     paragraph(44, 114, "Foreign Trade", 18, "coded"), paragraph(116, 136, "Defense", 16, "uncertain")])
    assert [(m["topic"], m["share"], m["coded_share"]) for m in mix] == [("Foreign Trade", 0.6154, 0.5385),
                                                                          ("Defense", 0.3846, 0.2308)]
    assert sum(m["chars"] for m in mix) == 130 and topic_mix([]) == []


@pytest.mark.e2e
def test_predict_segment_paragraphs_gives_the_seed_article_its_paragraph_topics_and_mix(demo_store, tmp_path):
    out = tmp_path / "coded.jsonl"
    result = call_cli(["predict", "--input", str(SEED), "--segment", "paragraphs", "--output", str(out)],
                      demo_store.home)
    assert result.returncode == 0, result.stderr
    [row] = [json.loads(line) for line in out.read_text().splitlines()]
    text = SEED.read_text()
    assert row["text"] == text and len(row["paragraphs"]) == 5  # the headline and four paragraphs
    assert text[row["paragraphs"][0]["start"]:row["paragraphs"][0]["end"]].startswith("Pakistan's Foreign Minister")
    for paragraph in row["paragraphs"]:
        assert paragraph["status"] in ("coded", "uncertain") and paragraph["top_topics"]
    assert {m["topic"] for m in row["topic_mix"]} == {p["top_topics"][0]["topic"] for p in row["paragraphs"]}
    assert abs(sum(m["share"] for m in row["topic_mix"]) - 1) < 1e-3
    coded = sum(p["end"] - p["start"] for p in row["paragraphs"] if p["status"] == "coded")
    total = sum(m["chars"] for m in row["topic_mix"])
    assert abs(sum(m["coded_share"] for m in row["topic_mix"]) - coded / total) < 1e-3
    assert row["status"] in ("coded", "uncertain") and "topic" in row  # the document's own topic stays
    csv_out = tmp_path / "coded.csv"
    again = call_cli(["predict", "--input", str(SEED), "--segment", "paragraphs", "--output", str(csv_out)],
                     demo_store.home)
    assert again.returncode == 0 and "topic_mix" in csv_out.read_text().splitlines()[0]
