"""sandbox: personas become Mesa agents on a relationship graph, react to scenarios, and every
interaction is logged to a run database."""

__version__ = "0.1.0"
