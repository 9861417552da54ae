"""Generated judge data: records with a prompt, a completion, a context and a ground truth.

Deterministic (seeded) English-like text of realistic RAG sizes: a question of about 20 words, a
context of about 180 words, an answer of about 70 words and a ground truth of about 30 words. The
JSONL uses the peer's column names (query, response, context, ground_truth) so that its evaluate()
maps them without a column mapping; our side maps them onto the monitor's record columns.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

WORDS = [
    "tent", "trail", "water", "filter", "stove", "jacket", "boots", "rain", "summit", "camp", "river", "map",
    "compass", "light", "battery", "weight", "pack", "sleeping", "bag", "warm", "cold", "night", "day",
    "hike", "route", "guide", "season", "snow", "wind", "shelter", "gear", "repair", "warranty", "order",
    "return", "size", "fit", "comfort", "price", "store", "delivery", "customer", "support", "model",
    "version", "feature", "capacity", "material", "nylon", "aluminium", "frame", "pole", "stake", "zipper",
    "seam", "waterproof", "breathable", "layer", "insulation", "rating", "temperature", "person", "family",
    "travel", "weekend", "forest", "lake"
]


def sentence(rng: random.Random, words: int) -> str:
    body = " ".join(rng.choice(WORDS) for _ in range(words))
    return body[0].upper() + body[1:] + "."


def paragraph(rng: random.Random, words: int) -> str:
    out, left = [], words
    while left > 0:
        n = min(left, rng.randint(8, 16))
        out.append(sentence(rng, n))
        left -= n
    return " ".join(out)


def record(index: int, seed: int = 7) -> dict[str, str]:
    rng = random.Random(seed * 1_000_003 + index)
    question = paragraph(rng, rng.randint(15, 25)).rstrip(".") + "?"
    return {
        "id": f"rec-{index:06d}",
        "query": question,
        "context": paragraph(rng, rng.randint(150, 210)),
        "response": paragraph(rng, rng.randint(55, 85)),
        "ground_truth": paragraph(rng, rng.randint(25, 35)),
    }


def write_records(path: Path, count: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as out:
        for i in range(count):
            out.write(json.dumps(record(i)) + "\n")
    return path


def read_records(path: Path, count: int | None = None) -> list[dict[str, str]]:
    rows = []
    with path.open() as source:
        for line in source:
            rows.append(json.loads(line))
            if count is not None and len(rows) >= count:
                break
    return rows
