"""Alembic's environment: migrations run on the connection the store hands over (``open_store``)."""

from __future__ import annotations

from alembic import context

from leadscore.store.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - the store always passes its connection
    raise RuntimeError("leadscore's migrations run through leadscore.store.db.open_store")
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
