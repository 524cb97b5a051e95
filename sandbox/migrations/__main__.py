"""``python -m sandbox.migrations revision -m "..." | check [URL] | upgrade URL``."""

from personahub.db.migrations import main
from sandbox.rundb import RUN_SCHEMA

main(RUN_SCHEMA)
