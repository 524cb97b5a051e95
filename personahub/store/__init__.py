"""The persona store: SQLModel tables, the PersonaStore, import/export and the carver.

Typical use::

    from personahub.store import PersonaStore, PersonaFilter, import_file

    store = PersonaStore("personas.db")
    import_file(store, "tool.jsonl")
    students = store.personas(PersonaFilter(contains_any=["student"], sample=50))
"""

from personahub.store.connection import StoreError
from personahub.store.filters import PersonaFilter, carve, carve_batches
from personahub.store.io import ImportReport, export_file, import_file
from personahub.store.models import (
    EdgeIn,
    Persona,
    PersonaEdge,
    PersonaIn,
    PersonaOrigin,
    PersonaVector,
    SourceText,
    persona_hash,
    stored_id,
)
from personahub.store.opening import is_store, open_personas
from personahub.store.similar import similar_personas
from personahub.store.store import PersonaStore
from personahub.store.vectors import StoredVectors
from personahub.store.writing import AddReport

__all__ = [
    "AddReport",
    "EdgeIn",
    "ImportReport",
    "Persona",
    "PersonaEdge",
    "PersonaFilter",
    "PersonaIn",
    "PersonaOrigin",
    "PersonaStore",
    "PersonaVector",
    "SourceText",
    "StoreError",
    "StoredVectors",
    "carve",
    "carve_batches",
    "export_file",
    "import_file",
    "is_store",
    "open_personas",
    "persona_hash",
    "similar_personas",
    "stored_id",
]
