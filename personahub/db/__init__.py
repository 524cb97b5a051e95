"""The database layer both packages share: engines for SQLite/PostgreSQL URLs (``engine``) and
Alembic migrations run at open (``migrations``)."""
