"""Alembic migration environment of the persona store (``versions/`` holds the revisions).

Opening a :class:`~personahub.store.PersonaStore` upgrades its database; see
:mod:`personahub.db.migrations` and docs/migrations.md. ``python -m personahub.store.migrations``
writes new revisions and checks them against the models.
"""
