"""The ``personahub`` command line: one module per command group.

``app`` assembles the groups (``llm_check``: ``llm check``; ``store``: the store commands;
``build``; ``synthesize``); ``common`` holds the console and the one-line error helper;
``llm_options`` the LLM flags every model command shares. The gateway (``personahub.llm``)
knows nothing of typer.
"""
