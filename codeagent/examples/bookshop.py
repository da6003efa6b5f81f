"""The workshop example: a bookshop's books and their reviews, generated deterministically."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

TITLES = (
    ("The Quiet Compiler", "A. Lovelace"),
    ("Gardens of Recursion", "M. Hamilton"),
    ("A Field Guide to Bugs", "G. Hopper"),
    ("Notebooks at Midnight", "F. Pérez"),
    ("The Last Semicolon", "D. Ritchie"),
    ("Small Data", "R. Fisher"),
    ("Ten Thousand Tests", "K. Beck"),
    ("The Sandboxed Mind", "B. Lampson"),
    ("Walking the Graph", "L. Euler"),
    ("Letters to a Young Parser", "N. Chomsky"),
    ("Cache Me If You Can", "J. Dean"),
    ("The Patient Kernel", "L. Torvalds"),
)
PHRASES = (
    "could not put it down",
    "slow start, strong finish",
    "the examples are excellent",
    "too long for what it says",
    "I learned a lot",
    "the second half drags",
    "beautifully written",
    "would not recommend",
    "a classic in the making",
    "fine for a long train ride",
)


@dataclass
class Bookshop:
    books: list[dict[str, Any]]
    reviews: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def list_books(self) -> list[dict[str, Any]]:
        return [dict(b) for b in self.books]

    def get_reviews(self, book_id: str) -> list[dict[str, Any]]:
        if book_id not in self.reviews:
            raise KeyError(f"no book with id {book_id!r}")
        return [dict(r) for r in self.reviews[book_id]]

    def best_rated(self, min_reviews: int) -> tuple[str, float]:
        """Ground truth: (title, average stars) of the best-rated book with at least ``min_reviews`` reviews."""
        scored = [
            (sum(r["stars"] for r in rs) / len(rs), b["title"])
            for b in self.books
            if len(rs := self.reviews[b["id"]]) >= min_reviews
        ]
        stars, title = max(scored)
        return title, round(stars, 2)


def make_bookshop(seed: int = 3) -> Bookshop:
    """Twelve books, each with 5 to 40 reviews of 1-5 stars."""
    rng = random.Random(seed)
    books, reviews = [], {}
    for i, (title, author) in enumerate(TITLES, 1):
        book_id = f"b{i:02d}"
        books.append({"id": book_id, "title": title, "author": author, "year": rng.randrange(1990, 2026)})
        quality = rng.uniform(2.2, 4.6)
        reviews[book_id] = [
            {
                "stars": max(1, min(5, round(rng.gauss(quality, 0.9)))),
                "text": f"{rng.choice(PHRASES).capitalize()}; {rng.choice(PHRASES)}.",
                "reviewer": f"reader{rng.randrange(1000, 9999)}",
            }
            for _ in range(rng.randrange(5, 41))
        ]
    return Bookshop(books, reviews)
