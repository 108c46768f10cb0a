"""The scoring service for the CRM (FastAPI): one lead or a batch in, calibrated P(SQL) out."""
