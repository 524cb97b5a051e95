"""Experiments: arms x seeds x sweep points of one scenario, run side by side through one
gateway, stored in one run database, compared as treatment - control effects.

``spec`` reads the ``experiment:`` and ``sweep:`` sections, ``plan`` turns them into concrete
runs, ``execute`` runs (and resumes) them together, ``effects`` computes the differences and
``report`` writes the HTML page and the terminal summary. See docs/experiments.md.
"""
