"""Alembic environment of the run database; run by :func:`personahub.migrations.upgrade`."""

from personahub.migrations import run_environment

run_environment()
