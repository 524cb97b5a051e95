"""sandbox: personas become Mesa agents on a relationship graph, react to scenarios, and every
interaction is logged to a run database."""

import personahub  # noqa: F401  (settles native library load order before anything else)

__version__ = "0.1.0"
