"""Every third-party package the code imports is a declared requirement of the wheel (the install
test borrows the project's environment, so it cannot see a missing one)."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
import tomllib
from pathlib import Path

from tests.helpers import ROOT

PACKAGE = ROOT / "src" / "leadscore"
OPTIONAL = {"spark": "pyspark"}  # a subpackage that may import its extra's requirement


def _name(requirement: str) -> str:
    return re.sub(r"[-_.]+", "-", re.split(r"[\s<>=!~;\[]", requirement, maxsplit=1)[0]).lower()


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


def test_every_imported_package_is_declared() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    required = {_name(r) for r in project["dependencies"]}
    extras = {extra: {_name(r) for r in reqs} for extra, reqs in project["optional-dependencies"].items()}
    distributions = importlib.metadata.packages_distributions()
    missing = []
    for path in sorted(PACKAGE.rglob("*.py")):
        part = path.relative_to(PACKAGE).parts[0]
        allowed = required | extras.get(part, set()) if part in OPTIONAL else required
        for module in sorted(_imports(path) - set(sys.stdlib_module_names) - {"leadscore", "__future__"}):
            names = {_name(d) for d in distributions.get(module, [module])}
            if not names & allowed:
                missing.append(f"{path.relative_to(ROOT)}: {module} ({', '.join(sorted(names))})")
    assert not missing, "imported but not declared in pyproject.toml:\n" + "\n".join(missing)


def test_the_check_sees_a_missing_requirement(tmp_path: Path) -> None:
    """The check itself can fail: a module importing an undeclared package is found."""
    module = tmp_path / "m.py"
    module.write_text("import numpy\nfrom hypothesis import given\nfrom . import sibling\nimport json\n")
    assert _imports(module) == {"numpy", "hypothesis", "json"}
    assert _name("psycopg[binary]>=3.1") == "psycopg" and _name("pydantic_settings>=2") == "pydantic-settings"
