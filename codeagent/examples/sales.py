"""The data-analysis example: a small shop's sales in a real SQLite database (standard library only)."""

from __future__ import annotations

import random
import sqlite3
from pathlib import Path
from typing import Any

REGIONS = ("North", "South", "East", "West")
#: name, category, unit price in cents, the month (1-12) it sells best in
PRODUCTS = (
    ("Espresso machine", "kitchen", 24_900, 12),
    ("Chef's knife", "kitchen", 8_900, 11),
    ("Cast-iron pan", "kitchen", 4_500, 12),
    ("Lawn mower", "garden", 31_900, 5),
    ("Garden hose", "garden", 2_900, 6),
    ("Seed kit", "garden", 1_500, 4),
    ("Tent", "outdoor", 18_900, 7),
    ("Sleeping bag", "outdoor", 7_900, 8),
    ("Head torch", "outdoor", 2_400, 10),
    ("Desk lamp", "office", 3_900, 1),
    ("Office chair", "office", 21_900, 9),
    ("Notebook pack", "office", 900, 9),
)
SCHEMA = """
CREATE TABLE regions (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
CREATE TABLE products (id INTEGER PRIMARY KEY, name TEXT NOT NULL, category TEXT NOT NULL,
                       unit_price_cents INTEGER NOT NULL);
CREATE TABLE orders (id INTEGER PRIMARY KEY, day TEXT NOT NULL, region_id INTEGER NOT NULL REFERENCES regions(id),
                     product_id INTEGER NOT NULL REFERENCES products(id), quantity INTEGER NOT NULL);
"""
MAX_ROWS = 5_000


def make_sales_db(path: str | Path, orders: int = 6_000, year: int = 2025, seed: int = 11) -> Path:
    """Write a new SQLite database of ``orders`` orders over ``year`` to ``path``; seasonal, deterministic."""
    path = Path(path)
    path.unlink(missing_ok=True)
    rng = random.Random(seed)
    rows = []
    for order_id in range(1, orders + 1):
        product_id = rng.randrange(len(PRODUCTS)) + 1
        peak = PRODUCTS[product_id - 1][3]
        month = _seasonal_month(rng, peak)
        day = f"{year}-{month:02d}-{rng.randrange(1, 29):02d}"
        rows.append((order_id, day, rng.randrange(len(REGIONS)) + 1, product_id, rng.choice((1, 1, 1, 2, 2, 3))))
    with sqlite3.connect(path) as con:
        con.executescript(SCHEMA)
        con.executemany("INSERT INTO regions VALUES (?, ?)", enumerate(REGIONS, 1))
        con.executemany(
            "INSERT INTO products VALUES (?, ?, ?, ?)", [(i, n, c, p) for i, (n, c, p, _) in enumerate(PRODUCTS, 1)]
        )
        con.executemany("INSERT INTO orders VALUES (?, ?, ?, ?, ?)", rows)
    con.close()
    return path


def _seasonal_month(rng: random.Random, peak: int) -> int:
    """A month drawn around ``peak`` (wrapping over the year), with a flat background."""
    if rng.random() < 0.35:
        return rng.randrange(1, 13)
    offset = round(rng.gauss(0, 1.4))
    return (peak - 1 + offset) % 12 + 1


def query(path: str | Path, sql: str, max_rows: int = MAX_ROWS) -> list[dict[str, Any]]:
    """Run one SQL statement on a read-only connection; rows as dicts, at most ``max_rows``."""
    con = sqlite3.connect(f"file:{Path(path).resolve()}?mode=ro", uri=True)
    try:
        con.row_factory = sqlite3.Row
        return [dict(row) for row in con.execute(sql).fetchmany(max_rows)]
    finally:
        con.close()
