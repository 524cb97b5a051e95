"""The persona build pipeline, in stage order.

1. ``sources``: stream input texts (JSONL, CSV, Parquet, text files, stdin).
2. ``text_to_persona``: one persona per text and angle (the paper's Text-to-Persona).
3. ``quality``: filters that reject malformed or off-topic personas.
4. dedup (``personahub.dedup``): exact hash, MinHash, then embeddings.
5. ``persona_to_persona``: relations of each persona, up to six hops.
6. ``pipeline``: ``PersonaBuilder`` runs the stages incrementally into a persona store, with
   its settings in ``options`` (``BuildOptions``) and its counts in ``report`` (``BuildReport``).
"""
