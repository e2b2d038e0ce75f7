"""Chunking: section boundaries, token budgets, overlap, determinism."""

from __future__ import annotations

import itertools
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helpfaster_box.knowledge.chunker import Chunk, approx_token_count, chunk
from helpfaster_box.knowledge.parsers import ParsedDocument, Section


def sentences(n: int, topic: str = "printer") -> str:
    return " ".join(f"Sentence {i} explains how the {topic} queue handles job {i}." for i in range(n))


def words_of(text: str) -> list[str]:
    return re.findall(r"\w+", text)


def test_one_chunk_per_short_section_with_heading_path_and_anchor_url():
    doc = ParsedDocument(
        "Admin Guide",
        [
            Section(None, None, "Preface text.", 0),
            Section("Setup", "setup", "Install it.", 1),
            Section("Network", "network", "Open port 8080.", 2),
            Section("Proxy", None, "Set HTTPS_PROXY.", 3),
            Section("Usage", "usage", "Run it.", 1),
        ],
    )
    chunks = chunk(doc, source_url="https://intranet/guide.html#top")
    assert [(c.section, c.url, c.text, c.position) for c in chunks] == [
        (None, "https://intranet/guide.html#top", "Preface text.", 0),
        ("Setup", "https://intranet/guide.html#setup", "Install it.", 1),
        ("Setup > Network", "https://intranet/guide.html#network", "Open port 8080.", 2),
        ("Setup > Network > Proxy", "https://intranet/guide.html#top", "Set HTTPS_PROXY.", 3),
        ("Usage", "https://intranet/guide.html#usage", "Run it.", 4),
    ]
    assert all(c.title == "Admin Guide" for c in chunks)


def test_url_is_none_without_source_and_anchor_is_escaped():
    doc = ParsedDocument(None, [Section("A b", "a b", "text", 1)])
    assert chunk(doc, source_url=None)[0].url is None
    assert chunk(doc, source_url="http://x/doc")[0].url == "http://x/doc#a%20b"


def test_empty_sections_produce_no_chunks_but_keep_the_path():
    doc = ParsedDocument(
        "T",
        [
            Section("Parent", None, "", 1),
            Section("Child", None, "\n\n  \n", 2),
            Section("Leaf", None, "Body.", 3),
        ],
    )
    assert [(c.section, c.text) for c in chunk(doc, source_url=None)] == [("Parent > Child > Leaf", "Body.")]


def test_paragraphs_are_packed_to_the_budget():
    paragraphs = [f"Paragraph {i} about refunds and returns." for i in range(30)]
    doc = ParsedDocument("T", [Section("S", None, "\n\n".join(paragraphs), 1)])
    chunks = chunk(doc, source_url=None, max_tokens=40, overlap_tokens=0)
    assert len(chunks) > 3
    assert all(approx_token_count(c.text) <= 40 for c in chunks)
    # without overlap, the paragraphs come out exactly once, in order, whole
    assert "\n\n".join(c.text for c in chunks).split("\n\n") == paragraphs


def test_long_paragraph_split_by_sentences_with_overlap():
    text = sentences(40)
    doc = ParsedDocument("T", [Section("Queue", "queue", text, 1)])
    chunks = chunk(doc, source_url="u", max_tokens=60, overlap_tokens=15)
    assert len(chunks) > 5
    for c in chunks:
        assert c.token_count == approx_token_count(c.text) <= 60
        assert c.text.endswith(".")  # cut at sentence ends, not mid-sentence
    for before, after in itertools.pairwise(chunks):
        first_sentence = re.split(r"(?<=\.) ", after.text)[0]
        assert before.text.endswith(first_sentence)  # overlap: the next starts with our tail
    covered = set().union(*(words_of(c.text) for c in chunks))
    assert covered == set(words_of(text))


def test_the_overlap_never_starts_a_chunk_mid_sentence():
    """A last sentence longer than the overlap budget is not carried as its last few
    words: a chunk that began "with a package source - a repository ..." gave replies
    that started mid-sentence. The next chunk then starts at its own first sentence."""
    long = "The mirror list " + " ".join(f"names host{i} and" for i in range(12)) + " more hosts."
    short = [f"Sentence {i} is short." for i in range(12)]
    text = " ".join([*short[:3], long, *short[3:]])  # the long one ends a chunk
    doc = ParsedDocument("T", [Section("Mirrors", None, text, 1)])
    chunks = chunk(doc, source_url=None, max_tokens=60, overlap_tokens=10)
    assert len(chunks) > 1
    for c in chunks:
        assert re.match(r"(?:Sentence \d+|The mirror list) ", c.text), c.text  # a sentence start
    covered = set().union(*(words_of(c.text) for c in chunks))
    assert covered == set(words_of(text))


def test_no_overlap_across_sections():
    doc = ParsedDocument(
        "T", [Section("A", None, sentences(20, "alpha"), 1), Section("B", None, sentences(20, "bravo"), 1)]
    )
    chunks = chunk(doc, source_url=None, max_tokens=50, overlap_tokens=20)
    assert all("bravo" not in c.text for c in chunks if c.section == "A")
    assert all("alpha" not in c.text for c in chunks if c.section == "B")


def test_giant_word_and_sentence_without_punctuation_are_hard_split():
    blob = "A" * 5000
    doc = ParsedDocument("T", [Section(None, None, f"start {blob} " + "word " * 500, 0)])
    chunks = chunk(doc, source_url=None, max_tokens=50, overlap_tokens=10)
    assert all(c.text.strip() and approx_token_count(c.text) <= 50 for c in chunks)
    assert sum(c.text.count("A") for c in chunks) >= 5000


def test_custom_counter_with_special_tokens_is_respected():
    def count(text: str) -> int:  # like a BERT tokenizer: [CLS] + [SEP] + one per 4 chars
        return 2 + (len(text) + 3) // 4

    doc = ParsedDocument("T", [Section("S", None, sentences(30) + "\n\n" + sentences(5), 1)])
    chunks = chunk(doc, source_url=None, max_tokens=64, overlap_tokens=10, count_tokens=count)
    assert chunks and all(count(c.text) <= 64 for c in chunks)
    assert all(c.token_count == count(c.text) for c in chunks)
    # the two specials are not charged once per sentence: chunks are filled close to the budget
    assert max(c.token_count for c in chunks) >= 50


def test_deterministic_and_positions_are_sequential():
    doc = ParsedDocument("T", [Section(f"H{i}", f"h{i}", sentences(12), 2) for i in range(4)])
    first = chunk(doc, source_url="x", max_tokens=45)
    assert first == chunk(doc, source_url="x", max_tokens=45)
    assert [c.position for c in first] == list(range(len(first)))
    assert all(isinstance(c, Chunk) for c in first)


def test_budget_too_small_is_an_error():
    with pytest.raises(ValueError):
        chunk(ParsedDocument("T", [Section(None, None, "x", 0)]), source_url=None, max_tokens=2)


def test_approx_token_count_is_roughly_wordpiece_sized():
    assert approx_token_count("") == 0
    assert approx_token_count("Hello, world!") == 4
    text = "Customers can reset their password from the account settings page."
    assert 1.0 <= approx_token_count(text) / len(text.split()) <= 1.6
    assert approx_token_count("日本語") == 3


@settings(max_examples=60, deadline=None)
@given(
    paragraphs=st.lists(
        st.lists(st.text(alphabet="abcdefghij .,!?-", min_size=1, max_size=40), max_size=12).map(" ".join),
        min_size=1,
        max_size=8,
    ),
    max_tokens=st.integers(min_value=10, max_value=80),
    overlap=st.integers(min_value=0, max_value=40),
)
def test_chunks_always_fit_and_cover_the_text(paragraphs, max_tokens, overlap):
    text = "\n\n".join(paragraphs)
    doc = ParsedDocument("T", [Section("S", None, text, 1)])
    squash = "".join(text.split())
    plain = chunk(doc, source_url=None, max_tokens=max_tokens, overlap_tokens=0)
    assert "".join("".join(c.text.split()) for c in plain) == squash  # nothing lost or added
    chunks = chunk(doc, source_url=None, max_tokens=max_tokens, overlap_tokens=overlap)
    assert [c.position for c in chunks] == list(range(len(chunks)))
    for c in chunks:
        assert c.text.strip() and approx_token_count(c.text) <= max_tokens
        assert "".join(c.text.split()) in squash
