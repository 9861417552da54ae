"""Helpers for the infrastructure tests: file discovery and pycep-parser JSON access.

pycep turns a .bicep file into JSON. Identifiers and string literals both come out as plain strings,
conditional resources/modules as {"condition", "config"} and loops as {"loop_type", "condition",
"config"}; `unwrap` peels those so that tests read the declared body directly.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
INFRA = REPO / "infra"


def bicep_files() -> list[Path]:
    return sorted(INFRA.rglob("*.bicep"))


@functools.cache
def parse(relpath: str) -> dict[str, Any]:
    """pycep JSON of infra/<relpath>."""
    from pycep import BicepParser

    return BicepParser().parse(file_path=INFRA / relpath)  # type: ignore[no-any-return]


def unwrap(config: Any) -> Any:
    """The body of a resource or module config, without `if (...)` or `for` wrappers."""
    while isinstance(config, dict) and "config" in config and set(config) <= {"condition", "config", "loop_type"}:
        config = config["config"]
    return config


def condition(config: Any) -> Any:
    """The `if (...)` condition of a resource or module config (None when unconditional)."""
    return config.get("condition") if isinstance(config, dict) and "config" in config else None


def resource(relpath: str, symbol: str) -> dict[str, Any]:
    return parse(relpath)["resources"][symbol]  # type: ignore[no-any-return]


def body(relpath: str, symbol: str) -> dict[str, Any]:
    """Declared body (name, properties, ...) of resource `symbol` in infra/<relpath>."""
    return unwrap(resource(relpath, symbol)["config"])  # type: ignore[no-any-return]


def module(relpath: str, symbol: str) -> dict[str, Any]:
    return parse(relpath)["modules"][symbol]  # type: ignore[no-any-return]


def resources_of_type(relpath: str, rtype: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in parse(relpath)["resources"].items() if v["type"].lower() == rtype.lower()}


def accessor(node: Any) -> str | None:
    """`a.b.c` for a pycep property_accessor chain, else None."""
    if isinstance(node, str):
        return node
    if isinstance(node, dict) and "operator" in node and node["operator"].get("type") == "property_accessor":
        ops = node["operator"]["operands"]
        left, right = accessor(ops["operand_1"]), accessor(ops["operand_2"])
        if left is not None and right is not None:
            return f"{left}.{right}"
    return None


def strings(node: Any) -> list[str]:
    """Every string (literal or identifier) anywhere inside a pycep node."""
    if isinstance(node, str):
        return [node]
    if isinstance(node, dict):
        return [s for value in node.values() for s in strings(value)]
    if isinstance(node, list):
        return [s for value in node for s in strings(value)]
    return []


def raw(relpath: str) -> str:
    return (INFRA / relpath).read_text(encoding="utf-8")


def strip_comments(text: str) -> str:
    """Bicep source without // and /* */ comments (string literals, URLs included, are kept)."""
    out: list[str] = []
    i, n, in_string = 0, len(text), False
    while i < n:
        ch = text[i]
        if in_string:
            out.append(ch)
            if ch == "\\" and i + 1 < n:
                out.append(text[i + 1])
                i += 1
            elif ch == "'":
                in_string = False
        elif ch == "'":
            in_string = True
            out.append(ch)
        elif text.startswith("//", i):
            while i < n and text[i] != "\n":
                i += 1
            continue
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            i = n if end < 0 else end + 2
            continue
        else:
            out.append(ch)
        i += 1
    return "".join(out)


def main_parameters() -> dict[str, Any]:
    return json.loads((INFRA / "main.parameters.json").read_text(encoding="utf-8"))  # type: ignore[no-any-return]
