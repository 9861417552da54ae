"""How deep JSON text nests, found without parsing it: linear time, whatever the text.

One implementation for every untrusted JSON the app reads (ingested lines and datarefs, API
bodies), so that a nesting bomb is refused before any recursive parser sees it.
"""

from __future__ import annotations

import re

# A string literal; the closing quote is optional so that an unterminated string matches to the end
# instead of being retried at every later quote (which is quadratic: 40,000 escaped quotes took 27 s).
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"?', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")


def too_deep(text: str, limit: int) -> bool:
    """Whether brackets outside strings nest deeper than `limit` (exact for valid JSON; linear
    time; counts brackets first and scans only when there are more than `limit`; stops early)."""
    if text.count("[") + text.count("{") <= limit:
        return False
    skeleton = _NOT_BRACKET.sub("", _STRING.sub("", text))
    depth = 0
    for char in skeleton:
        if char in "[{":
            depth += 1
            if depth > limit:
                return True
        else:
            depth -= 1
    return False
