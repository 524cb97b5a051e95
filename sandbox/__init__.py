"""sandbox: personas become Mesa agents on a relationship graph, react to scenarios, and every
interaction is logged to a run database."""

import personahub  # noqa: F401  (settles native library load order before anything else)

__version__ = "0.1.0"

__all__ = ["load_run"]


def __getattr__(name: str) -> object:
    # Lazy: `import sandbox` (every command) must not open the database layer.
    if name == "load_run":
        from sandbox.frames import load_run

        return load_run
    raise AttributeError(f"module 'sandbox' has no attribute {name!r}")
