"""The evidence the extractive decline decision rests on (chat/compose.py): how rare
each question term is in the chatbot's documents, how much of that weight the chosen
passage holds, and which never-used question words are names rather than casual words.
Small real-shaped inputs: handbook-like passages in a real index, the real embedder's
tokenizer."""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace

import numpy as np
import pytest

from helpfaster_box.chat import compose
from helpfaster_box.retrieval.index import ChatbotIndex

PASSAGES = [
    "To list the files of an installed package, run dpkg -L package as root.",
    "The file /etc/apt/sources.list names the mirrors that apt downloads packages from.",
    "Each package lists its dependencies; apt installs them with the package.",
    "A package can be removed with apt remove package, keeping its configuration files.",
]


def _knowledge(texts: list[str]) -> SimpleNamespace:
    index = ChatbotIndex(8)
    rng = np.random.default_rng(0)
    vecs = rng.standard_normal((len(texts), 8)).astype(np.float32)
    index.add(np.arange(1, len(texts) + 1), vecs / np.linalg.norm(vecs, axis=1, keepdims=True), texts)
    return SimpleNamespace(indexes=SimpleNamespace(get=lambda _bot: index))


def test_rarity_is_one_for_unused_terms_and_low_for_common_ones():
    index = _knowledge(PASSAGES).indexes.get("bot")
    package, mirror, sourdough = index.rarity(["package", "mirror", "sourdough"])
    assert sourdough == pytest.approx(1.0)
    assert 0.0 < package < mirror < 1.0  # in every passage vs in one


def test_salient_coverage_weighs_the_rare_terms_of_the_question():
    k = _knowledge(PASSAGES)
    terms = compose.salient_terms(k, "bot", "Which file lists the apt mirrors of a package?")
    assert "mirror" in dict(terms) and "which" not in dict(terms)  # stopwords dropped
    mirrors = compose.salient_coverage(terms, PASSAGES[1])
    removal = compose.salient_coverage(terms, PASSAGES[3])  # shares "package", "file"
    assert mirrors > 0.9 and removal < 0.5
    assert compose.salient_coverage([], "anything") == 1.0  # nothing to cover


@pytest.fixture(scope="module")
def embedder() -> Iterator[object]:
    from helpfaster_box.llm.embedder import Embedder
    from helpfaster_box.llm.registry import default_models_dir, list_models

    models = default_models_dir()
    entry = next(e for e in list_models(models) if e.origin == "manifest" and e.role == "embedding")
    emb = Embedder(str(models / entry.file))
    yield emb
    emb.close()


@pytest.mark.models
def test_rare_words_are_names_the_tokenizer_splits_not_casual_words(embedder):
    rare = compose.rare_words(embedder, ["chromebook", "xlookup", "fastest", "people", "coworker", "404"])
    assert "xlookup" in rare and "chromebook" in rare
    assert not {"fastest", "people", "404"} & set(rare)
    assert compose.rare_words(embedder, []) == []


def test_a_never_used_name_in_the_question_declines_what_weak_evidence_would_answer():
    """ "Is there a libreoffice app for my iPad?": the passage shares the common words,
    the name is in no document. Without it the same evidence answers."""
    ok = compose.Evidence(cosine=0.5, dense=0.5, coverage=0.5, margin=0.1, gap=0.1, salient=0.2)
    absent = compose.Evidence(
        cosine=0.5,
        dense=0.5,
        coverage=0.5,
        margin=0.1,
        gap=0.1,
        salient=0.2,
        unknown=["chromebook"],
        unknown_share=0.25,
        rare=["chromebook"],
    )
    assert compose.answerable_of(absent) < compose.DECLINE_BELOW <= compose.answerable_of(ok)
    strong = compose.Evidence(cosine=0.7, dense=0.7, coverage=1.0, margin=0.3, gap=0.3, salient=1.0)
    assert compose.confidence_of(ok) < compose.confidence_of(strong) <= 1.0
