"""The code stays in small pieces a newcomer can read: no module over 500 lines and no
function over 80, in the product, the benchmarks and the tests (generated migrations
aside). This test is the tool that checks it, in every CI run; the layers themselves are
checked by import-linter (`lint-imports`, contracts in pyproject.toml).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MAX_MODULE, MAX_FUNCTION = 500, 80
SOURCES = sorted(path for top in ("gateway", "adapters", "responders", "scheduler", "bench",
                                  "tests")
                 for path in (ROOT / top).rglob("*.py") if "migrations" not in path.parts)


def test_there_is_code_to_check() -> None:
    assert len(SOURCES) > 100
    assert ROOT / "gateway" / "pipeline" / "receive.py" in SOURCES


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_module_over_500_lines_and_no_function_over_80(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= MAX_MODULE, f"{path.name}: split it by what it does"
    too_long = [f"{node.name} ({node.end_lineno - node.lineno + 1} lines, line {node.lineno})"
                for node in ast.walk(ast.parse(text))
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
                and node.end_lineno - node.lineno + 1 > MAX_FUNCTION]  # type: ignore[operator]
    assert not too_long, f"functions over {MAX_FUNCTION} lines: {too_long}"
