"""Data: synthetic generator, validation and sources (CSV, Parquet, generator folders)."""
