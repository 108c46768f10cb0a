"""The house's size limits, measured with ``ast``: no function in ``src/`` over 80 lines, no module
over 500, no class over 20 methods. ``make sizes`` prints the three largest of each."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import NamedTuple

SRC = Path(__file__).resolve().parents[1] / "src" / "leadscore"
MAX_FUNCTION_LINES = 80
MAX_MODULE_LINES = 500
MAX_CLASS_METHODS = 20


class Size(NamedTuple):
    size: int
    where: str  # path relative to src/, and the qualified name


def _trees(root: Path = SRC) -> list[tuple[str, str, ast.Module]]:
    return [
        (str(p.relative_to(root.parent)), text, ast.parse(text))
        for p in sorted(root.rglob("*.py"))
        for text in [p.read_text(encoding="utf-8")]
    ]


def function_sizes(root: Path = SRC) -> list[Size]:
    """Every function and method (nested ones too), by its lines from ``def`` (or its first
    decorator) to its last line."""
    out = []
    for path, _, tree in _trees(root):
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                start = min([node.lineno, *(d.lineno for d in node.decorator_list)])
                end = node.end_lineno or node.lineno
                out.append(Size(end - start + 1, f"{path}::{node.name}"))
    return sorted(out, reverse=True)


def module_sizes(root: Path = SRC) -> list[Size]:
    return sorted((Size(len(text.splitlines()), path) for path, text, _ in _trees(root)), reverse=True)


def class_sizes(root: Path = SRC) -> list[Size]:
    """Every class by the methods defined in its body (inherited ones are the parent's)."""
    out = []
    for path, _, tree in _trees(root):
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                methods = [n for n in node.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]
                out.append(Size(len(methods), f"{path}::{node.name}"))
    return sorted(out, reverse=True)


def test_the_measures_count_what_the_limits_mean(tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    body = "".join(f"    x{i} = {i}\n" for i in range(79))  # def line + 79 + return: 81 lines
    methods = "".join(f"    @property\n    def m{i}(self):\n        return {i}\n\n" for i in range(20))
    (pkg / "big.py").write_text(
        f"@decorated\ndef long():\n{body}    return 0\n\n\nclass Wide:\n{methods}    async def extra(self):\n"
        "        def inner():\n            pass\n"
    )
    functions = {s.where: s.size for s in function_sizes(pkg)}
    assert functions["pkg/big.py::long"] == 82  # the decorator counts
    assert functions["pkg/big.py::inner"] == 2 and "pkg/big.py::m0" in functions  # nested, methods
    assert class_sizes(pkg) == [Size(21, "pkg/big.py::Wide")]  # inner() is not Wide's method
    assert module_sizes(pkg)[0].size == len((pkg / "big.py").read_text().splitlines())


def test_no_function_is_over_80_lines() -> None:
    over = [s for s in function_sizes() if s.size > MAX_FUNCTION_LINES]
    assert not over, f"functions over {MAX_FUNCTION_LINES} lines: {over}"


def test_no_module_is_over_500_lines() -> None:
    over = [s for s in module_sizes() if s.size > MAX_MODULE_LINES]
    assert not over, f"modules over {MAX_MODULE_LINES} lines: {over}"


def test_no_class_has_over_20_methods() -> None:
    over = [s for s in class_sizes() if s.size > MAX_CLASS_METHODS]
    assert not over, f"classes over {MAX_CLASS_METHODS} methods: {over}"


def main() -> None:
    for title, sizes, unit, limit in (
        ("functions", function_sizes(), "lines", MAX_FUNCTION_LINES),
        ("modules", module_sizes(), "lines", MAX_MODULE_LINES),
        ("classes", class_sizes(), "methods", MAX_CLASS_METHODS),
    ):
        print(f"largest {title} (limit {limit} {unit}):")
        for s in sizes[:3]:
            print(f"  {s.size:>4} {unit:<8} {s.where}")


if __name__ == "__main__":
    main()
