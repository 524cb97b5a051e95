"""Alembic migration environment of the run database (``versions/`` holds the revisions).

Opening a :class:`~sandbox.rundb.RunDatabase` upgrades its database; see
:mod:`personahub.db.migrations` and docs/migrations.md. ``python -m sandbox.migrations`` writes
new revisions and checks them against the models.
"""
