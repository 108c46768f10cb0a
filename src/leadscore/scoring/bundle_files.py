"""A bundle's folder on disk: its file names, checksums, and reading it back verified.

A bundle folder holds ``bundle.json`` (the metadata), ``booster.txt`` (the LightGBM trees), in a
routing bundle one ``booster_segment_NNN.txt`` per segment with a model of its own, and
``checksums.json`` (SHA-256 of the others, checked before any of them is parsed).
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import NamedTuple

from leadscore.errors import UserError

BUNDLE_FILE = "bundle.json"
BOOSTER_FILE = "booster.txt"
CHECKSUM_FILE = "checksums.json"  # SHA-256 of the other files, checked before either is parsed
SEGMENT_BOOSTER = "booster_segment_{:03d}.txt"  # a routing bundle's segment boosters
TIME_BOOSTER = "time_booster.txt"  # the time-to-SQL head's hazard booster (when the data had SQL times)


class BundleFiles(NamedTuple):
    """A bundle's texts as read from its folder (verified): metadata, booster, segment boosters."""

    meta_json: str
    booster_text: str
    segment_boosters: dict[str, str]


def write_bundle(
    folder: Path, meta_json: str, booster_text: str, segment_boosters: Mapping[str, str]
) -> Path:
    """Write a bundle's files and their checksums into ``folder`` (made if missing)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / BOOSTER_FILE).write_text(booster_text, encoding="utf-8")
    for name, text in segment_boosters.items():
        (folder / name).write_text(text, encoding="utf-8")
    (folder / BUNDLE_FILE).write_text(meta_json, encoding="utf-8")
    write_checksums(folder)
    return folder


def write_checksums(folder: Path) -> None:
    """Record the SHA-256 of a bundle's files (after any change to them): bundle.json, the booster
    and, in a routing bundle, each segment's booster."""
    extra = [p.name for p in folder.glob("booster_segment_*.txt")]
    extra += [TIME_BOOSTER] if (folder / TIME_BOOSTER).is_file() else []
    names = [BUNDLE_FILE, BOOSTER_FILE, *sorted(extra)]
    sums = {name: _sha256(folder / name) for name in names}
    (folder / CHECKSUM_FILE).write_text(json.dumps(sums, indent=1, sort_keys=True), encoding="utf-8")


def bundle_folder(location: str | Path) -> Path:
    """The folder holding ``bundle.json``: the location itself or an exported MLflow model's
    ``artifacts/bundle`` (MLflow URIs are resolved by ``leadscore.load_bundle``, not here)."""
    text = str(location)
    if "://" in text or text.startswith(("models:/", "runs:/")):
        raise UserError(f"{location}: an MLflow URI; load it with leadscore.load_bundle")
    folder = Path(location)
    for candidate in (folder, folder / "artifacts" / "bundle"):
        if (candidate / BUNDLE_FILE).is_file():
            return candidate
    if not folder.exists():
        raise UserError(f"{location}: model not found")
    raise UserError(f"{location}: not a leadscore model (no {BUNDLE_FILE})")


def read_bundle(location: str | Path) -> BundleFiles:
    """A bundle's texts, each file read once and verified before anything is parsed; every error is
    one line that starts with the location."""
    folder = bundle_folder(location)
    try:
        raw = read_verified(folder, location)
    except UserError as exc:
        text = str(exc)
        raise UserError(text if text.startswith(str(location)) else f"{location}: {text}") from None
    try:
        texts = {name: data.decode("utf-8") for name, data in raw.items()}
    except UnicodeDecodeError as exc:
        raise UserError(f"{location}: model bundle is corrupt (UnicodeDecodeError: {exc})") from exc
    extra = {n: t for n, t in texts.items() if n not in (BUNDLE_FILE, BOOSTER_FILE)}
    return BundleFiles(texts[BUNDLE_FILE], texts[BOOSTER_FILE], extra)


def read_verified(folder: Path, location: str | Path) -> dict[str, bytes]:
    """A bundle's files, each read once and checked before anything is parsed: against their
    checksums, or for a bundle written before checksums, the booster for wholeness (a truncated
    booster file makes LightGBM abort the whole process, which no ``except`` can catch). What is
    checked is what gets parsed: nothing can change on disk in between."""
    sums_path = folder / CHECKSUM_FILE
    try:
        expected = json.loads(sums_path.read_text(encoding="utf-8")) if sums_path.is_file() else None
        names = [
            BUNDLE_FILE,
            BOOSTER_FILE,
            *(n for n in sorted(expected or {}) if n not in (BUNDLE_FILE, BOOSTER_FILE)),
        ]
        raw = {name: (folder / name).read_bytes() for name in names}
    except OSError as exc:
        raise UserError(
            f"{location}: model bundle is incomplete ({exc.strerror}: {Path(exc.filename or '').name})"
        ) from exc
    except ValueError as exc:
        raise UserError(f"{location}: model bundle is damaged ({CHECKSUM_FILE} is not valid JSON)") from exc
    if expected is None:  # nothing says these bytes are the ones written: parse them elsewhere first
        try:
            text = raw[BOOSTER_FILE].decode("utf-8")
        except UnicodeDecodeError as exc:
            raise UserError(f"{location}: model bundle is damaged (the booster file is not text)") from exc
        _check_booster_text(text)
        _parse_elsewhere(text)
        return raw
    for name in raw:
        if hashlib.sha256(raw[name]).hexdigest() != expected.get(name):
            raise UserError(f"{location}: model bundle is damaged ({name} does not match its checksum)")
    return raw


def _check_booster_text(text: str) -> None:
    """A LightGBM model text is whole when it has as many trees as its header says and its end marker."""
    declared = next((line for line in text.splitlines()[:40] if line.startswith("tree_sizes=")), None)
    if declared is None or "end of trees" not in text:
        raise UserError("model bundle is damaged (the booster file is cut short)")
    if text.count("\nTree=") != len(declared.removeprefix("tree_sizes=").split()):
        raise UserError("model bundle is damaged (the booster file has fewer trees than it declares)")


_PARSE = "import sys, lightgbm; lightgbm.Booster(model_str=sys.stdin.read())"


def _parse_elsewhere(text: str) -> None:
    """Parse an unverified booster in a child process: a damaged one can make LightGBM abort the
    whole process ("terminate called without an active exception"), which must not be this one."""
    try:
        done = subprocess.run(
            [sys.executable, "-c", _PARSE], input=text, capture_output=True, text=True, timeout=300
        )
    except subprocess.TimeoutExpired:
        raise UserError("model bundle is damaged (reading its booster did not finish)") from None
    if done.returncode != 0:
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        why = lines[-1][:200] if lines else f"the reader died with code {done.returncode}"
        raise UserError(
            f"model bundle is damaged (its booster cannot be read: {why}); it has no {CHECKSUM_FILE} "
            "to tell what was written: export it again"
        )


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
