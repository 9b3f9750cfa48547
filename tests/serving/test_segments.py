"""Long documents coded paragraph by paragraph: the paragraphs found, the topic mix, and `predict
--segment paragraphs` on the Pakistan-US seed article."""

from __future__ import annotations

import json

import pytest
from conftest import REPO, run_cli

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


def test_the_mix_is_the_share_of_characters_by_topic_with_the_uncertain_together():
    paragraphs = [{"start": 0, "end": 30, "topic": "Defense", "code": 16},
                  {"start": 32, "end": 42, "topic": None, "code": None},
                  {"start": 44, "end": 114, "topic": "Foreign Trade", "code": 18},
                  {"start": 116, "end": 126, "topic": None, "code": None}]
    mix = topic_mix(paragraphs)
    assert [(m["topic"], m["share"]) for m in mix] == [("Foreign Trade", 0.5833), ("Defense", 0.25), (None, 0.1667)]
    assert mix[-1]["status"] == "uncertain" and sum(m["chars"] for m in mix) == 120


@pytest.mark.e2e
def test_predict_segment_paragraphs_gives_the_seed_article_its_paragraph_topics_and_mix(demo_store, tmp_path):
    out = tmp_path / "coded.jsonl"
    result = run_cli(["predict", "--input", str(SEED), "--segment", "paragraphs", "--output", str(out)],
                     demo_store.home)
    assert result.returncode == 0, result.stderr
    [row] = [json.loads(line) for line in out.read_text().splitlines()]
    text = SEED.read_text()
    assert row["text"] == text and len(row["paragraphs"]) == 5  # the headline and four paragraphs
    assert text[row["paragraphs"][0]["start"]:row["paragraphs"][0]["end"]].startswith("Pakistan's Foreign Minister")
    for paragraph in row["paragraphs"]:
        assert paragraph["status"] in ("coded", "uncertain") and paragraph["top_topics"]
    coded = {p["topic"] for p in row["paragraphs"] if p["status"] == "coded"}
    assert {m["topic"] for m in row["topic_mix"] if m["topic"]} == coded
    assert abs(sum(m["share"] for m in row["topic_mix"]) - 1) < 1e-3
    assert row["status"] in ("coded", "uncertain") and "topic" in row  # the document's own topic stays
    csv_out = tmp_path / "coded.csv"
    again = run_cli(["predict", "--input", str(SEED), "--segment", "paragraphs", "--output", str(csv_out)],
                    demo_store.home)
    assert again.returncode == 0 and "topic_mix" in csv_out.read_text().splitlines()[0]
