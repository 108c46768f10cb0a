"""The generated tables as Arrow tables and files, with the data-quality faults real exports have."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa

from leadscore.data.sources import write_arrow
from leadscore.data.synthetic.vocab import COUNTRY_VARIANTS, PLACEHOLDER_COLUMNS, PLACEHOLDER_VALUES


def dict_array(codes: np.ndarray, names: tuple[str, ...] | np.ndarray) -> pa.Array:
    dictionary = pa.array(list(names), type=pa.string())
    return pa.DictionaryArray.from_arrays(pa.array(codes.astype(np.int32)), dictionary).cast(pa.string())


def ts_array(ms: np.ndarray) -> pa.Array:
    return pa.array(ms.astype("datetime64[ms]"), type=pa.timestamp("ms"))


def dict_array_nullable(codes: np.ndarray, names: tuple[str, ...]) -> pa.Array:
    mask = codes < 0
    indices = pa.array(np.where(mask, 0, codes).astype(np.int32), mask=mask)
    return pa.DictionaryArray.from_arrays(indices, pa.array(list(names))).cast(pa.string())


def inject_faults(
    rng: np.random.Generator, cols: dict[str, np.ndarray], rate: float
) -> dict[str, np.ndarray]:
    """Data-quality faults a CRM export really has, each kind on about ``rate`` of the leads."""
    n = len(cols["lead_id"])
    k = int(round(rate * n))
    if k == 0:
        return cols
    for name in ("job_title", "industry", "department", "tech_stack", "country", "email"):
        cols[name] = cols[name].copy()
    cols["employee_count"] = cols["employee_count"].astype(np.float64)
    # Placeholders left at a form's default.
    rows = rng.choice(n, size=k, replace=False)
    which = rng.integers(0, len(PLACEHOLDER_COLUMNS), k)
    for r, w, ph in zip(rows, which, rng.integers(0, 2, k), strict=True):
        cols[PLACEHOLDER_COLUMNS[w]][r] = PLACEHOLDER_VALUES[ph]
    # Country spelled several ways.
    variant_countries = np.array(list(COUNTRY_VARIANTS), dtype=object)
    candidates = np.flatnonzero(np.isin(cols["country"], variant_countries))
    rows = rng.choice(candidates, size=min(k, candidates.size), replace=False)
    for r, pick in zip(rows, rng.integers(0, 10, rows.size), strict=True):
        variants = COUNTRY_VARIANTS[cols["country"][r]]
        cols["country"][r] = variants[pick % len(variants)]
    # Impossible values: negative or absurd company sizes.
    rows = rng.choice(n, size=k, replace=False)
    cols["employee_count"][rows] = np.where(rng.random(k) < 0.5, -1.0, 99_999_999.0)
    # Duplicate contacts: the same person again, email differing in case or spaces.
    src = np.sort(rng.choice(n, size=k, replace=False))
    dup = {name: values[src].copy() for name, values in cols.items()}
    dup["lead_id"] = cols["lead_id"].max() + 1 + np.arange(k, dtype=np.int64)
    style = rng.integers(0, 3, k)
    dup["email"] = np.array(
        [
            e.upper() if s == 0 else (f"  {e} " if s == 1 else e.capitalize())
            for e, s in zip(dup["email"], style, strict=True)
        ],
        dtype=object,
    )
    return {name: np.concatenate([cols[name], dup[name]]) for name in cols}


def arrow_leads_table(cols: dict[str, np.ndarray]) -> pa.Table:
    arrays: dict[str, pa.Array] = {}
    for name, values in cols.items():
        if name in {"created_at", "scored_at"}:
            arrays[name] = ts_array(values)
        elif values.dtype == object and not _whole_numbers(values):
            arrays[name] = pa.array(values, type=pa.string())
        else:
            arrays[name] = pa.array(values, from_pandas=True)  # NaN (a truth not drawn) is null
    return pa.table(arrays)


def _whole_numbers(values: np.ndarray) -> bool:
    """An object column of whole numbers with gaps (an id column filled for some rows only)."""
    filled = [v for v in values[:1000] if v is not None]
    return bool(filled) and all(isinstance(v, int | np.integer) for v in filled)


def write_dataset(tables: dict[str, pa.Table], out_dir: str | Path, fmt: str = "parquet") -> list[Path]:
    """Write the generator's tables into ``out_dir`` (each file atomically)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    suffix = "parquet" if fmt == "parquet" else "csv"
    return [write_arrow(table, out / f"{name}.{suffix}", fmt) for name, table in tables.items()]
