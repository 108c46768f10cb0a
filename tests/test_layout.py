"""The package map holds: imports point one way (function-local ones included), no cycles, a pinned public API."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import leadscore

SRC = Path(leadscore.__file__).resolve().parent

# Highest first: a package may import only packages in later layers (and its own modules).
# `service` sits above `tracking` because it loads models:/ URIs through `tracking.loading`;
# `tracking` sits above `modeling` because it logs a typed `TrainResult`; `store` (the database)
# sits below `scoring`, which logs batch scores to it; `spark` (features and scores inside Spark) is a
# peer of `modeling`: it runs the scoring and data code, never training; see docs/design.md.
LAYERS: list[set[str]] = [
    {"cli"},
    {"jobs", "web"},
    {"reports"},
    {"monitoring", "service"},
    {"tracking"},
    {"modeling", "spark"},
    {"scoring"},
    {"store"},
    {"data"},
    {"features"},
    {"spec"},
    {"config"},
    {"errors", "_version"},
]
RANK = {unit: i for i, layer in enumerate(LAYERS) for unit in layer}
PUBLIC_API = [
    "CutoffContract",
    "DatasetSpec",
    "GeneratorConfig",
    "ModelBundle",
    "PointsModel",
    "Settings",
    "TrainOptions",
    "TrainResult",
    "UserError",
    "__version__",
    "compare_metrics",
    "cutoff_tradeoff",
    "describe_champion",
    "explain_leads",
    "generate",
    "get_settings",
    "global_importance",
    "load_bundle",
    "load_contract",
    "load_rules",
    "load_spec",
    "make_demo_data",
    "monitor",
    "promote",
    "read_leads",
    "read_table",
    "rollback",
    "score_file",
    "score_output",
    "shap_figures",
    "train",
    "train_and_log",
    "validate",
    "validate_frame",
    "workspace",
    "write_contract",
    "write_dataset",
]


def _unit(module: str) -> str | None:
    """The layer unit of a ``leadscore.x.y`` module name: ``x`` (a package or top-level module)."""
    parts = module.split(".")
    if parts[0] != "leadscore" or len(parts) < 2:
        return None
    return parts[1]


def _module_name(path: Path) -> str:
    rel = path.relative_to(SRC.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _imports(path: Path, package: str | None = None) -> list[tuple[int, str]]:
    """Every ``leadscore`` module a file imports, at any depth (function-local imports count)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    if package is None:
        name = _module_name(path)
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.startswith("leadscore")]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            if module.startswith("leadscore"):
                found.append((node.lineno, module))
                # `from leadscore.x import y` may name a submodule y; count it too.
                found += [(node.lineno, f"{module}.{a.name}") for a in node.names]
    return found


def _source_files() -> list[Path]:
    return sorted(p for p in SRC.rglob("*.py") if "configs" not in p.parts)


def test_every_module_belongs_to_a_layer() -> None:
    units = {u for p in _source_files() if (u := _unit(_module_name(p))) is not None} - {"__main__"}
    assert units <= set(RANK), f"modules outside the map: {sorted(units - set(RANK))}"


def _violations(path: Path, here: str, package: str | None = None) -> list[str]:
    wrong: dict[tuple[int, str], str] = {}
    for line, module in _imports(path, package):
        there = _unit(module)
        if there is None or there == here or there not in RANK:
            continue
        if RANK[there] <= RANK[here]:
            wrong.setdefault((line, there), f"line {line}: {module} ({there} is not below {here})")
    return list(wrong.values())


@pytest.mark.parametrize("path", _source_files(), ids=lambda p: str(p.relative_to(SRC)))
def test_imports_point_one_way(path: Path) -> None:
    here = _unit(_module_name(path))
    if here in (None, "__main__"):  # the package facade (lazy public API) and `python -m leadscore`
        return
    wrong = _violations(path, here)
    assert not wrong, f"{path.relative_to(SRC)} imports upward or sideways:\n" + "\n".join(wrong)


def test_no_import_cycles_between_modules() -> None:
    graph: dict[str, set[str]] = {}
    names = {_module_name(p) for p in _source_files()}
    for path in _source_files():
        here = _module_name(path)
        graph[here] = {m for _, m in _imports(path) if m in names and m != here}
    seen: dict[str, int] = {}  # 1 = on the stack, 2 = done

    def visit(node: str, stack: list[str]) -> None:
        seen[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if seen.get(nxt) == 1:
                cycle = stack[stack.index(nxt) :] + [nxt] if nxt in stack else [node, nxt]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if nxt not in seen:
                visit(nxt, [*stack, nxt])
        seen[node] = 2

    for node in sorted(graph):
        if node not in seen and not node.endswith("leadscore"):
            visit(node, [node])


def test_the_layer_check_catches_upward_and_sideways_imports(tmp_path: Path) -> None:
    """The checker itself: imports hidden in functions, relative ones and ones between peers are found."""
    probe = tmp_path / "probe.py"
    probe.write_text(
        "from ..features import values\n"
        "def f():\n    from leadscore.modeling.train import train\n    return train\n"
        "def g():\n    from ..monitoring import drift\n    return drift\n"
    )
    wrong = _violations(probe, "scoring", package="leadscore.scoring")
    assert [w.split(" (")[1] for w in wrong] == [
        "modeling is not below scoring)",
        "monitoring is not below scoring)",
    ]
    assert _violations(probe, "service", package="leadscore.service")[-1].endswith(
        "(monitoring is not below service)"
    )


def test_public_api_is_pinned_and_every_name_resolves() -> None:
    assert leadscore.__all__ == PUBLIC_API
    for name in PUBLIC_API:
        assert getattr(leadscore, name) is not None, name


def test_importing_scoring_does_not_load_mlflow_or_training_code() -> None:
    code = (
        "import sys, leadscore.scoring.bundle, leadscore.scoring.batch, leadscore.service.leads;"
        "bad = [m for m in ('mlflow', 'leadscore.modeling', 'sklearn.linear_model', 'fastapi.testclient')"
        " if m in sys.modules]; print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "", f"loaded on import: {out.strip()}"
