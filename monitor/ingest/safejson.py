"""Decode untrusted JSON text in bounded time and memory, or say precisely why not.

`json.loads` alone can be stopped by input that is valid JSON: nesting deep enough to exhaust the
stack (`RecursionError`), an integer longer than Python converts (`ValueError`), or an unpaired
UTF-16 surrogate escape that parses but can never be stored. :func:`loads` checks for each first,
cheaply, and raises :class:`JsonRefusedError` with the quarantine reason (docs/ingest.md).
"""

from __future__ import annotations

import json
import re
from typing import Any

from monitor.ingest.quarantine import RejectedInputError
from monitor.jsondepth import too_deep

# Deeper nesting is refused before parsing; MDC rows are a few levels deep.
MAX_JSON_DEPTH = 128

_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
BOM = "\ufeff"


class JsonRefusedError(RejectedInputError):
    """Text that is not storable JSON."""


def loads(text: str) -> Any:
    """`json.loads` for untrusted text: raises JsonRefusedError (a ValueError) for every refusal."""
    if text.startswith(BOM):
        text = text[1:]
    if too_deep(text, MAX_JSON_DEPTH):
        raise JsonRefusedError("json_too_deep", f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise JsonRefusedError("invalid_json", f"invalid JSON: {exc}") from None
    except RecursionError:  # not reachable after too_deep; kept so no input can escape as a crash
        raise JsonRefusedError("json_too_deep", "JSON nested too deeply to parse") from None
    except ValueError as exc:  # the integer-string conversion limit
        raise JsonRefusedError("number_too_long", f"a number is too long to convert: {exc}") from None
    if _SURROGATE_ESCAPE.search(text):
        _check_storable(value)
    return value


def _check_storable(value: Any) -> None:
    """Unpaired surrogate escapes (`\\ud800`) parse, but no UTF-8 text (or table entity) holds them."""
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError as exc:
        raise JsonRefusedError("invalid_unicode",
                          f"a string holds an unpaired UTF-16 surrogate ({exc.object[exc.start:exc.end]!r})") from None
