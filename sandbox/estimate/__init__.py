"""Cost before and after a run: model calls, prompt and completion tokens, and money,
predicted without calling a model (``sandbox estimate``, ``sandbox run --dry-run``) and shown
beside the actual figures in every run summary and report.

How (see :mod:`sandbox.estimate.run`): the run's own Mesa model is stepped to the end on a
gateway whose backend answers every request with a typical answer instead of asking a model
(:mod:`sandbox.estimate.dry`), so who acts when, word of mouth along the graph and the
rendered prompts are the real run's; tokens are counted with the model's tokenizer or a
characters-per-token ratio (:mod:`sandbox.estimate.tokens`).
"""
