"""personahub: the Persona Hub pipeline (text-to-persona, persona-to-persona, dedup, a persona
store), persona-driven synthesis, and the one LLM gateway everything uses."""

from personahub._native import preload_system_cxx_runtime

preload_system_cxx_runtime()

__version__ = "0.1.0"
