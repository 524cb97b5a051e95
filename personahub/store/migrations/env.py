"""Alembic environment of the persona store; run by :func:`personahub.db.migrations.upgrade`."""

from personahub.db.migrations import run_environment

run_environment()
