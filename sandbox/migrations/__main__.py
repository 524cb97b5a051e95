"""``python -m sandbox.migrations revision -m "..." | check [URL] | upgrade URL``."""

from personahub.migrations import main
from sandbox.recorder import RUN_SCHEMA

main(RUN_SCHEMA)
