"""Alembic environment of the persona store; run by :func:`personahub.migrations.upgrade`."""

from personahub.migrations import run_environment

run_environment()
