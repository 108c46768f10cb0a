"""How a CSV export writes its numbers: the separator, and the decimal and thousands marks.

Excel in most of Europe saves "CSV" with semicolons between cells and decimal commas inside them
(``1.234,56``). Read with a decimal point, ``1.919`` employees became 1.919 and ``2,659`` days a
text; ``validate`` said the file was usable. Every reader now takes the format from the file's own
cells: a semicolon (or tab, or bar) file whose numbers are written with decimal commas is read with
``decimal=","`` and ``thousands="."``; ``validate`` says which format it used, and a column whose
numbers read either way (``1.919`` and no decimal comma anywhere in it) is named in a warning.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SEPARATORS = (",", ";", "\t", "|")
HEAD_BYTES = 1 << 20
SAMPLE_ROWS = 2_000

# Only a decimal-comma writer: 0,5 / 1234,56 / 1.234,56 / 1.234.567 (two thousands dots)
_COMMA_DECIMAL = re.compile(r"^[-+]?\d+,\d+$|^[-+]?\d{1,3}(\.\d{3})+,\d+$|^[-+]?\d{1,3}(\.\d{3}){2,}$")
# A number that can only have a decimal point: 0.5 / 12.25 / 3.14159 (not exactly three digits after it)
_POINT_DECIMAL = re.compile(r"^[-+]?\d*\.(\d{1,2}|\d{4,})$")
# Reads either way: 1.919 (1919 with a thousands dot, or 1.919)
_EITHER = re.compile(r"^[-+]?\d{1,3}\.\d{3}$")


# pandas' missing-value marks without "NA" and "None" (see ``CsvFormat.read_options``)
MISSING_MARKS = (
    "",
    "#N/A",
    "#N/A N/A",
    "#NA",
    "-1.#IND",
    "-1.#QNAN",
    "-NaN",
    "-nan",
    "1.#IND",
    "1.#QNAN",
    "<NA>",
    "N/A",
    "NULL",
    "NaN",
    "n/a",
    "nan",
    "null",
)


@dataclass(frozen=True)
class CsvFormat:
    """The separator and number marks of one CSV file, and the columns whose numbers are ambiguous."""

    sep: str = ","
    decimal: str = "."
    thousands: str | None = None
    ambiguous: tuple[str, ...] = field(default=())
    encoding: str = "utf-8"  # "utf-16" for Excel's "Unicode Text" (found by its byte-order mark)

    def read_options(self) -> dict[str, Any]:
        """What ``pandas.read_csv`` needs to read the file's numbers as its author wrote them, and
        its words as written: "NA" (North America, Namibia) and "None" (no tool, no budget) are
        answers in CRM fields, not missing values; a Parquet export keeps them, so must a CSV."""
        options: dict[str, Any] = {
            "sep": self.sep,
            "encoding": self.encoding,
            "keep_default_na": False,
            "na_values": list(MISSING_MARKS),
        }
        if self.decimal != ".":
            options.update(decimal=self.decimal, thousands=self.thousands)
        return options

    def describe(self) -> str:
        sep = {"\t": "tab", ",": "comma", ";": "semicolon", "|": "bar"}[self.sep]
        marks = (
            f"decimal comma, '{self.thousands}' between thousands" if self.decimal == "," else "decimal point"
        )
        return f"{sep}-separated, {marks}"


def separator(first_line: str, suffix: str) -> str:
    """The separator from the header line: the most common of , ; tab and | (a comma when none)."""
    if suffix == ".tsv":
        return "\t"
    counts = {sep: first_line.count(sep) for sep in SEPARATORS}
    best = max(SEPARATORS, key=lambda sep: counts[sep])
    return best if counts[best] else ","


def encoding_of(head: bytes) -> str:
    """The text encoding from the first bytes: UTF-16 by its byte-order mark (Excel's "Unicode
    Text"), else UTF-8 (with or without its mark)."""
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "utf-16"
    if head.startswith(b"\xef\xbb\xbf"):
        return "utf-8-sig"
    return "utf-8"


def head_text(path: Path) -> tuple[str, str, bool]:
    """The file's first ``HEAD_BYTES`` as text, its encoding, and whether that is the whole file."""
    with path.open("rb") as fh:
        head = fh.read(HEAD_BYTES)
        whole = not fh.read(1)
    encoding = encoding_of(head)
    if encoding == "utf-16" and len(head) % 2:
        head = head[:-1]
    return head.decode(encoding, errors="replace"), encoding, whole


def detect(path: Path) -> CsvFormat:
    """The file's format from its first rows (at most ``HEAD_BYTES``)."""
    text, encoding, whole = head_text(path)
    lines = text.splitlines()
    if not lines:
        return CsvFormat(encoding=encoding)
    sep = separator(lines[0], path.suffix.lower())
    if sep == ",":  # a comma file cannot hold unquoted decimal commas: numbers use points
        return CsvFormat(sep, encoding=encoding)
    try:
        rows = list(csv.reader(lines[: SAMPLE_ROWS + 1], delimiter=sep))
    except csv.Error:  # a cell past the csv module's limit: the reader says so, naming the row
        return CsvFormat(sep, encoding=encoding)
    header, body = rows[0], rows[1:] if whole and len(lines) <= SAMPLE_ROWS else rows[1:-1]
    comma, point, either = _counts(header, body)
    names = [c.strip() for c in header]
    if sum(comma.values()) <= sum(point.values()):
        ambiguous = tuple(c for c in names if either.get(c) and not point.get(c))
        return CsvFormat(sep, ambiguous=ambiguous, encoding=encoding)
    ambiguous = tuple(c for c in names if either.get(c) and not comma.get(c))
    return CsvFormat(sep, ",", ".", ambiguous, encoding)


def _counts(header: list[str], body: list[list[str]]) -> tuple[dict[str, int], ...]:
    """Per column: cells with a decimal comma, cells with a decimal point, cells that read either way."""
    comma: dict[str, int] = {}
    point: dict[str, int] = {}
    either: dict[str, int] = {}
    for row in body:
        for name, cell in zip(header, row, strict=False):
            value = cell.strip()
            if not value or not value[-1].isdigit():
                continue
            for pattern, counts in ((_COMMA_DECIMAL, comma), (_POINT_DECIMAL, point), (_EITHER, either)):
                if pattern.match(value):
                    counts[name.strip()] = counts.get(name.strip(), 0) + 1
    return comma, point, either
