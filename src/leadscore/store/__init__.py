"""The store: what happens after the score, in one database (SQLAlchemy 2, migrations by Alembic).

SQLite by default (``LEADSCORE_DATABASE_URL``, a file under ``data/``, WAL mode, busy timeout);
PostgreSQL for teams (``postgresql+psycopg://...``). Tables: ``decisions`` (sales' accept/reject
decisions), ``scores`` (every answer the service or a batch scoring handed out) and
``latest_scores`` (each lead's last logged answer: its ``previous`` and ``trend``).
"""
