"""``python -m personahub.store.migrations revision -m "..." | check [URL] | upgrade URL``."""

from personahub.db.migrations import main
from personahub.store.models import STORE_SCHEMA

main(STORE_SCHEMA)
