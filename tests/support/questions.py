"""Generated visitor questions on clearly different themes, for the topic tests and bench.

Each theme has its own vocabulary (the word the test expects among a topic's keywords),
several phrasings and several details, so the questions are varied but each theme is one
thing a support lead would name.
"""

from __future__ import annotations

import itertools
import random

THEMES: dict[str, tuple[list[str], list[str]]] = {
    "password": (
        [
            "How do I reset my password {d}?",
            "I forgot my password {d}, what now?",
            "Can you help me change my password {d}?",
            "My password stopped working {d}",
            "Where is the password reset link {d}?",
        ],
        ["for the portal", "on my laptop", "after the update", "for email", "again", "today"],
    ),
    "invoice": (
        [
            "Where can I download my invoice {d}?",
            "The invoice {d} shows the wrong amount",
            "Can I get a copy of the invoice {d}?",
            "Why was I charged twice on my invoice {d}?",
            "Please send the invoice {d} to accounting",
        ],
        ["for March", "for order 1042", "from last month", "as PDF", "with VAT", "for my company"],
    ),
    "shipping": (
        [
            "When will my shipping package arrive {d}?",
            "How much does shipping cost {d}?",
            "Is express shipping available {d}?",
            "My shipping tracking number {d} does not work",
            "Do you offer free shipping {d}?",
        ],
        ["to Norway", "to Germany", "this week", "for large orders", "abroad", "overnight"],
    ),
    "printer": (
        [
            "The office printer {d} is jammed",
            "How do I connect to the printer {d}?",
            "The printer {d} prints blank pages",
            "Printer {d} shows error E-1337",
            "Who refills toner in the printer {d}?",
        ],
        ["on floor 2", "in room 301", "near the kitchen", "in the lobby", "by reception", "upstairs"],
    ),
}


def theme_questions(per_theme: int, seed: int = 7) -> list[tuple[str, str]]:
    """(theme, question) pairs, shuffled; phrasings x details cycled for variety."""
    rng = random.Random(seed)
    out = []
    for theme, (templates, details) in THEMES.items():
        combos = list(itertools.product(templates, details))
        rng.shuffle(combos)
        for i in range(per_theme):
            template, detail = combos[i % len(combos)]
            out.append((theme, template.format(d=detail)))
    rng.shuffle(out)
    return out
