"""Layer 1: every .bicep file under infra/ parses with tree-sitter-bicep (no ERROR or MISSING node).

The Bicep CLI is not available in CI, so this is the syntax gate; `bicep build` and what-if run in
the user's pipeline (docs/deploy.md). Failures name file:line:column of each bad node.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import tree_sitter_bicep
from tree_sitter import Language, Node, Parser

from tests.infra.bicep_json import INFRA, REPO, bicep_files, strip_comments

EXPECTED = {
    "main.bicep",
    "eventgrid.bicep",
    "app/alerts.bicep",
    "app/function.bicep",
    "app/identity.bicep",
    "app/monitoring.bicep",
    "app/openai.bicep",
    "app/rbac.bicep",
    "app/storage.bicep",
}


def _parser() -> Parser:
    return Parser(Language(tree_sitter_bicep.language()))


def syntax_errors(source: bytes, label: str) -> list[str]:
    """`label:line:col: ...` for every ERROR or MISSING node of the parse tree."""
    tree = _parser().parse(source)
    problems: list[str] = []

    def visit(node: Node) -> None:
        if node.is_error or node.is_missing:
            line, col = node.start_point
            text = source[node.start_byte : node.end_byte].decode("utf-8", "replace").splitlines()
            if node.is_missing:
                what = f"missing {node.type}"
            else:
                what = f"syntax error near {text[0][:60]!r}" if text else "syntax error"
            problems.append(f"{label}:{line + 1}:{col + 1}: {what}")
            if node.is_error:
                return
        for child in node.children:
            visit(child)

    visit(tree.root_node)
    if tree.root_node.has_error and not problems:
        problems.append(f"{label}: parse tree has errors")
    return problems


def test_expected_templates_exist() -> None:
    found = {p.relative_to(INFRA).as_posix() for p in bicep_files()}
    assert found >= EXPECTED, f"missing templates: {sorted(EXPECTED - found)}"


@pytest.mark.parametrize("path", bicep_files(), ids=lambda p: p.relative_to(INFRA).as_posix())
def test_bicep_file_parses(path: Path) -> None:
    problems = syntax_errors(path.read_bytes(), path.relative_to(REPO).as_posix())
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("path", bicep_files(), ids=lambda p: p.relative_to(INFRA).as_posix())
def test_no_constructs_the_scanners_cannot_read(path: Path) -> None:
    """tree-sitter-bicep cannot parse spread or `extension`; checkov's parser skips files with
    lambdas (`map(` and friends), `func`, `import` or `@export`. Keep every file readable by all."""
    code = strip_comments(path.read_text(encoding="utf-8"))
    for pattern in ("...", "map(", "filter(", "reduce(", "sort(", "toObject(", "=>", "@export"):
        assert pattern not in code, f"{path.name}: uses {pattern!r}"
    for keyword in ("func ", "import ", "extension "):
        used = any(line.lstrip().startswith(keyword) for line in code.splitlines())
        assert not used, f"{path.name}: uses {keyword!r}"


def test_checker_reports_file_line_column() -> None:
    """The gate itself: a broken template is reported with its position."""
    assert syntax_errors(b"param a string\nvar b = 1\nvar c = a ++ b\n", "x.bicep") == [
        "x.bicep:3:12: syntax error near '+'"
    ]
    assert syntax_errors(b"var c = [1 2\nvar d = 3\n", "y.bicep") == ["y.bicep:2:10: missing ]"]
    assert syntax_errors(b"var ok = [\n  1\n  2\n]\n", "z.bicep") == []
