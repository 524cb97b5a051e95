"""``mode: archetypes``: a million agents in one run, one model request per archetype.

Following AgentTorch's "LLM archetypes" (arXiv 2409.10568): agents that would get the same
prompt (the same persona attributes named in the scenario, the same events seen, about as many
contacts' posts heard with the same majority stance) form an archetype; each step the model is
asked once per non-empty archetype for an answer distribution, and every member draws its own
answer from it with its own seeded generator. Word of mouth still moves agents between
archetypes. A fidelity sample of agents per archetype is also asked one by one, and the report
shows the gap: what the shortcut costs.

Modules, in data-flow order: ``scenario`` (the scenario section), ``population`` (agents as
columns), ``network`` (CSR graph), ``state`` (what agents saw and said, as arrays),
``buckets`` (archetypes of a step), ``asking`` (requests and distributions), ``draws``
(per-agent seeded draws), ``model`` (the Mesa model), ``storage`` (columnar files),
``mode`` (registry hooks), ``report``.
"""
