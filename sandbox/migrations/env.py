"""Alembic environment of the run database; run by :func:`personahub.db.migrations.upgrade`."""

from personahub.db.migrations import run_environment

run_environment()
