"""Traffic-shape counters: token buckets, empty and refused answers, per segment."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from monitor.partials import partial_entity, shapes_of_entity
from monitor.records import Record
from monitor.shape import ShapeCounter, answer_kind, count_shapes, merge_shapes, token_bucket

T = datetime(2026, 11, 20, 14, tzinfo=UTC)


@pytest.mark.parametrize(("tokens", "bucket"), [(0, 0), (1, 1), (16, 1), (17, 2), (64, 2), (65, 3), (256, 3),
                                                (257, 4), (1024, 4), (1025, 5), (4096, 5), (4097, 6)])
def test_token_buckets_are_fixed(tokens: int, bucket: int) -> None:
    assert token_bucket(tokens) == bucket


@pytest.mark.parametrize(("completion", "kind"), [
    (None, 1), ("", 1), ("   \n", 1), ("Reset it from Settings > Security.", 0),
    ("I'm sorry, but I can't help with that.", 2), ("Sorry, I cannot share internal data.", 2),
    ("I cannot assist with this request.", 2), ("As an AI, I do not have opinions.", 2),
    ("I can't find that setting? Try Settings.", 0), ("Unfortunately, I am unable to answer.", 2),
])
def test_answer_kinds(completion: str | None, kind: int) -> None:
    assert answer_kind(completion) == kind


def record(key: str, completion: str | None, deployment: str = "blue", sampled: bool = True) -> Record:
    return Record(monitor="m", key=key, time=T, prompt="How do I reset my password?", completion=completion,
                  deployment=deployment, sampled=sampled)


def test_count_shapes_per_segment_and_round_trip_through_a_partial() -> None:
    records = [record("a", "Open Settings."), record("b", ""), record("c", "I'm sorry, I can't help with that."),
               record("d", "Fine.", deployment="green", sampled=False)]
    shapes = count_shapes(records)
    assert shapes["all"].records == 4 and shapes["all"].answers == [2, 1, 1]
    assert shapes["deployment=blue"].answers == [1, 1, 1] and shapes["deployment=green"].records == 1
    assert shapes["all"].prompt_tokens[1] == 4  # "How do I reset my password?" is 1-16 tokens
    assert shapes["all"].completion_tokens[0] == 1  # the empty answer
    entity = partial_entity("m|2026112014", "b1", {}, 4, "now", shapes)
    assert shapes_of_entity(entity) == shapes
    assert shapes_of_entity(partial_entity("m|2026112014", "b1", {}, 4, "now")) == {}
    merged = merge_shapes({"all": ShapeCounter(records=1, answers=[1, 0, 0])}, shapes)
    assert merged["all"].records == 5 and merged["all"].answers == [3, 1, 1]
