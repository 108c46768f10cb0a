"""The reference pages name only what exists: every command and flag of docs/commands.md's table,
every spec and contract key of docs/spec.md's tables (and every key the schema has is named)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, get_args, get_origin

import pytest
import typer.main
from pydantic import BaseModel

from leadscore.cli import app
from leadscore.scoring.contract import CutoffContract
from leadscore.spec import Aggregation, DatasetSpec

DOCS = Path(__file__).resolve().parents[1] / "docs"


def _table(page: str, heading: str) -> list[str]:
    """The first cells of the table under a heading."""
    text = (DOCS / page).read_text(encoding="utf-8")
    section = text.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| ")]
    return [row.split(" | ")[0].removeprefix("| ").strip() for row in rows[1:] if not row.startswith("|---")]


def _commands() -> list[tuple[str, str]]:
    """Each command the table names (``leadscore x`` or ``leadscore x y``) with its cell."""
    out = []
    for cell in _table("commands.md", "Every command"):
        for usage in re.findall(r"`(leadscore [^`]*)`", cell):
            out.append((usage, cell))
    return out


def _subcommands(command: Any) -> dict[str, Any]:
    """A command group's commands by name (none for a plain command); typer vendors its click."""
    found: dict[str, Any] = getattr(command, "commands", None) or {}
    return found


def _resolve(words: list[str]) -> Any:
    command: Any = typer.main.get_command(app)
    for word in words:
        found = _subcommands(command).get(word)
        assert found is not None, (
            f"docs/commands.md names 'leadscore {' '.join(words)}', which does not exist"
        )
        command = found
    return command


def test_the_command_table_names_real_commands_and_flags() -> None:
    usages = _commands()
    assert len(usages) >= 15  # the table was read
    for usage, _ in usages:
        words = usage.split()[1:]
        path = [w for w in words[:2] if re.fullmatch(r"[a-z][a-z-]*", w)]
        command = _resolve(path[:1])
        if _subcommands(command) and len(path) > 1:
            command = _resolve(path[:2])
        flags = {
            o for p in command.params for o in [*getattr(p, "opts", []), *getattr(p, "secondary_opts", [])]
        }
        for flag in re.findall(r"(?<![\w-])(--[a-z][a-z-]*)", usage):
            assert flag in flags, f"docs/commands.md: '{usage}' names {flag}, which the command does not take"


def test_every_command_is_in_the_table() -> None:
    named = {" ".join(w for w in u.split()[1:3] if re.fullmatch(r"[a-z][a-z-]*", w)) for u, _ in _commands()}
    root = _subcommands(typer.main.get_command(app))
    assert len(root) >= 10
    for name, command in root.items():
        if _subcommands(command):
            for sub in _subcommands(command):
                assert f"{name} {sub}" in named, f"'leadscore {name} {sub}' is missing from docs/commands.md"
        else:
            assert name in named or any(n.split()[0] == name for n in named), (
                f"'leadscore {name}' is missing from docs/commands.md"
            )


def _model_of(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model a field holds (directly, optionally, or as a dict's values)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        if get_origin(annotation) is dict and arg is get_args(annotation)[0]:
            continue
        found = _model_of(arg)
        if found is not None:
            return found
    return None


def _is_mapping(annotation: Any) -> bool:
    """A field that maps names to models (``writeback: {salesforce: {...}}``): keyed by ``<name>``."""
    return get_origin(annotation) is dict or any(_is_mapping(arg) for arg in get_args(annotation))


def _keys(model: type[BaseModel], prefix: str = "") -> set[str]:
    """Every key of a schema, nested models' keys dotted (``label.stages``); the aggregations of
    ``engagement`` and any other mapping of names to models as ``key.<name>.*``."""
    out = set()
    for name, field in model.model_fields.items():
        key = f"{prefix}{name}"
        out.add(key)
        inner = _model_of(field.annotation)
        if inner is Aggregation or (inner is not None and _is_mapping(field.annotation)):
            out |= _keys(inner, f"{key}.<name>.")
        if inner is not None and inner is not model and _holds_one(field.annotation, inner):
            out |= _keys(inner, f"{key}.")  # one model (``events: {id, ...}``), perhaps beside named ones
    return out


def _holds_one(annotation: Any, inner: type[BaseModel]) -> bool:
    """The field may hold one ``inner`` itself (not only a mapping of them)."""
    if annotation is inner:
        return True
    return get_origin(annotation) is not dict and any(_holds_one(a, inner) for a in get_args(annotation))


@pytest.mark.parametrize(
    ("heading", "model"),
    [("Every dataset spec key", DatasetSpec), ("Every cutoff contract key", CutoffContract)],
)
def test_the_key_tables_name_every_key_and_only_real_ones(heading: str, model: type[BaseModel]) -> None:
    documented = {cell.strip("`") for cell in _table("spec.md", heading)}
    real = _keys(model)
    if model is CutoffContract:  # a segment's own policy repeats the contract's policy keys
        real = {k for k in real if not k.startswith("segments.")}
    assert documented - real == set(), (
        f"docs/spec.md names keys the schema does not have: {documented - real}"
    )
    assert real - documented == set(), f"docs/spec.md does not name: {real - documented}"


def test_the_measure_of_keys_reads_nested_models() -> None:
    keys = _keys(DatasetSpec)
    assert {"label.stages", "events.type", "segments.by", "engagement.<name>.half_life_days"} <= keys
    assert {"events.<name>.email", "events.type_value", "writeback.<name>.fields"} <= keys
