"""Training data from run databases: ``sandbox export`` (see docs/export.md).

Modules: :mod:`~sandbox.export.samples` pulls chat samples out of a run,
:mod:`~sandbox.export.clean` scrubs and filters them, :mod:`~sandbox.export.records` holds
the pydantic model of each output format, :mod:`~sandbox.export.writers` writes and splits,
and :mod:`~sandbox.export.pipeline` runs it all and counts what happened.
"""

from sandbox.export.pipeline import (
    DROP_REASONS,
    ExportError,
    ExportReport,
    export_run,
    report_table,
)
from sandbox.export.records import FORMATS
from sandbox.export.samples import ROLES

__all__ = [
    "DROP_REASONS",
    "FORMATS",
    "ROLES",
    "ExportError",
    "ExportReport",
    "export_run",
    "report_table",
]
