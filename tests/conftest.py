"""Shared fixtures: seeded factories for synthetic leads and the real X Education file."""

from __future__ import annotations

import functools
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest

from leadscore.data.synthetic import GeneratorConfig, generate, write_dataset

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
XEDUCATION = SHARED_DATA / "xeducation" / "Leads.csv"


@functools.lru_cache(maxsize=8)
def make_tables(n: int, seed: int, fault_rate: float = 0.02, drift: bool = False) -> dict[str, pa.Table]:
    """Seeded synthetic tables (cached: generation is deterministic)."""
    return generate(GeneratorConfig(leads=n, seed=seed, fault_rate=fault_rate, drift=drift))


def make_leads(n: int, seed: int, fault_rate: float = 0.02, drift: bool = False) -> pd.DataFrame:
    """A fresh copy of the seeded leads table."""
    return make_tables(n, seed, fault_rate, drift)["leads"].to_pandas()


@pytest.fixture(scope="session")
def synthetic_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generator folder of 6,000 leads (Parquet), written once per session."""
    out = tmp_path_factory.mktemp("synthetic")
    write_dataset(make_tables(6000, 7), out)
    return out


@pytest.fixture(scope="session")
def xeducation_path() -> Path:
    if not XEDUCATION.is_file():
        pytest.fail(f"real data missing: {XEDUCATION} (tests on real data read ../shared/data)")
    return XEDUCATION
