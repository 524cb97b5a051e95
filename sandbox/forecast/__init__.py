"""Forecast mode: persona agents answer a scenario's questions as its timeline unfolds.

``scenario`` (the scenario class: questions, interaction, segments), ``agent`` (what one agent
sees and decides), ``answers`` (the structured reply it gives), ``model`` (``ForecastModel``:
the Mesa model that steps them), and the analysis of a finished run: ``analysis`` (shares,
means, intervals, segments), ``results`` (the ``Forecast`` it returns), ``stats``, ``ssr``
(semantic-similarity rating), ``plots``, ``report`` (the HTML page and terminal summary), and
``mode`` (building, resuming and describing runs, for the mode registry ``sandbox.modes``).
"""
