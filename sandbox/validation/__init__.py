"""Validation against real survey answers: survey specs, populations from respondents,
``sandbox calibrate``, scores and baselines, and the calibration report (docs/validation.md)."""
