"""Installed the ordinary way (a wheel, not editable) into a fresh virtual environment, from an empty
folder: generate, train with the shipped spec, score and the points model all work."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

from tests.helpers import ROOT

pytestmark = pytest.mark.slow


def _run(cmd: list[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, (
        f"{' '.join(cmd)} -> {done.returncode}\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    )
    return done


def _outside_env() -> dict[str, str]:
    """This environment without the project's settings and paths (as a user's shell would be), at the
    suite's search budget (the search has tests of its own)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LEADSCORE_", "MLFLOW_", "PYTHONPATH"))}
    env["LEADSCORE_SEARCH_TRIALS"] = "2"
    return env


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with leadscore installed from a wheel built from a copy of the sources.

    Its dependencies come from the project's own environment (a ``.pth`` line to its site-packages),
    so the test needs no download; leadscore itself is only the wheel's copy.
    """
    work = tmp_path_factory.mktemp("install")
    source = work / "source"
    shutil.copytree(ROOT / "src", source / "src", ignore=shutil.ignore_patterns("*.egg-info", "__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    wheels = work / "wheels"
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(wheels),
            ".",
        ],
        cwd=source,
    )
    env_dir = work / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    python = env_dir / "bin" / "python"
    site = Path(
        _run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], cwd=work
        ).stdout.strip()
    )
    (site / "_leadscore_test_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    wheel = next(wheels.glob("leadscore-*.whl"))
    _run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "-q", str(wheel)],
        cwd=work,
    )
    return env_dir


def test_the_installed_package_runs_the_main_commands_from_an_empty_folder(
    installed: Path, tmp_path: Path
) -> None:
    bin_dir = installed / "bin"
    empty = tmp_path / "empty"
    empty.mkdir()
    env = _outside_env()
    where = _run([str(bin_dir / "python"), "-c", "import leadscore; print(leadscore.__file__)"], empty, env)
    assert Path(where.stdout.strip()).is_relative_to(installed), "leadscore was not imported from the wheel"
    assert not (empty / "configs").exists()

    leadscore = str(bin_dir / "leadscore")
    _run([leadscore, "generate", "--leads", "2500", "--seed", "3", "--out", "d"], empty, env)
    _run([leadscore, "validate", "d", "--spec", "synthetic"], empty, env)
    trained = _run([leadscore, "train", "d", "--spec", "synthetic", "--json"], empty, env)
    assert '"registered_model": "leadscore-synthetic"' in trained.stdout
    assert (empty / "models" / "synthetic").is_dir() and (empty / "mlruns" / "mlflow.db").is_file()
    _run(
        [leadscore, "score", "d", "--model", "models/synthetic", "--out", "scored.csv", "--explain", "2"],
        empty,
        env,
    )
    _run([leadscore, "feedback", "import", "d"], empty, env)  # the store's migrations are in the wheel
    assert (empty / "data" / "leadscore.db").is_file()
    header = (empty / "scored.csv").read_text().splitlines()[0]
    assert header.startswith('"lead_id","p_sql","mql","grade","reason_1"')
    points = _run([leadscore, "points", "d", "--json"], empty, env)
    assert '"rules": "b2b-default"' in points.stdout
    _run([leadscore, "points", "d", "--rules", "xeducation", "--json"], empty, env)
    pages = (
        "from leadscore.web.views import environment as e; [e().get_template(t) for t in "
        + repr(["queue.html", "app_lead.html", "card.html", "signin.html", "_styles.html"])
        + "]"
    )
    _run([str(bin_dir / "python"), "-c", pages], empty, env)  # the sales pages' templates are in the wheel


def test_a_projects_own_configs_override_the_shipped_ones(installed: Path, tmp_path: Path) -> None:
    own = tmp_path / "configs" / "rules"
    own.mkdir(parents=True)
    (own / "b2b-default.yaml").write_text(
        "name: our-rules\nmql_points: 10\nmin_fit_points: 0\n"
        "rules:\n  - {name: big, part: fit, points: 10, column: employee_count, op: '>=', value: 100}\n"
    )
    env = _outside_env()
    _run([str(installed / "bin" / "leadscore"), "generate", "--leads", "1000", "--out", "d"], tmp_path, env)
    out = _run([str(installed / "bin" / "leadscore"), "points", "d", "--json"], tmp_path, env).stdout
    assert '"rules": "our-rules"' in out


def test_the_wheels_requirements_are_met_where_it_is_installed(installed: Path) -> None:
    """``pip check``: every requirement the wheel declares is satisfied (its dependencies are seen
    through the test's path line, so this proves the declared ones exist, and the next test that
    nothing imported is left undeclared)."""
    _run([sys.executable, "-m", "pip", "--python", str(installed / "bin" / "python"), "check"], installed)
