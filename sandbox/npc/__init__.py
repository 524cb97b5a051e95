"""NPC worlds: personas become game characters who talk to each other and to a player.

- ``scenario``: the scenario class of ``mode: npc_world`` (world, dialogue, player).
- ``profiles``: NPC profiles written from personas (the synthesis ``npc`` task).
- ``agent``: NPCAgent: profile, memory of conversations, relationships.
- ``dialogue``: the dialogue engine: conversations turn by turn, batched across pairs.
- ``model``: NPCWorldModel: who talks to whom each step, relationship updates, recording.
- ``report``: the HTML report and terminal summary of an NPC-world run.
- ``mode``: building, resuming and describing runs, for the mode registry (``sandbox.modes``).
"""
