"""The backend registry: ``{name: how to build it}``.

A backend is a class (or any callable) that takes :class:`~personahub.llm.settings.LLMSettings`
and returns a :class:`~personahub.llm.backends.base.Backend`. :func:`register_backend` makes it
selectable by name: the settings' ``backend`` field (and a scenario's ``llm.backend``) accept
exactly the registered names. The built-in ``local`` and ``openai`` backends are registered
in :mod:`personahub.llm.backends` with factories that import their module only when used
(the ``openai`` SDK takes seconds to import); a backend living elsewhere, like the test
doubles of :mod:`personahub.llm.testing`, registers itself when its module is imported.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

from pydantic import AfterValidator

from personahub.llm.backends.base import Backend

if TYPE_CHECKING:
    from personahub.llm.settings import LLMSettings

BackendFactory = Callable[["LLMSettings"], Backend]


@dataclass(frozen=True, slots=True)
class BackendSpec:
    """A registered backend.

    Attributes:
        factory: Builds the backend from settings (cheaply: no model load yet).
        default_model: The model name when the settings name none.
    """

    factory: BackendFactory
    default_model: str


_REGISTRY: dict[str, BackendSpec] = {}


def register_backend(name: str, factory: BackendFactory, default_model: str) -> None:
    """Make ``factory`` selectable as backend ``name`` (registering a name again replaces
    its entry)."""
    _REGISTRY[name] = BackendSpec(factory, default_model)


def backend_names() -> list[str]:
    """The registered backend names, in registration order."""
    return list(_REGISTRY)


def backend_spec(name: str) -> BackendSpec:
    """The registered backend ``name``.

    Raises:
        KeyError: ``name`` is not registered.
    """
    return _REGISTRY[name]


def _registered(name: str) -> str:
    if name not in _REGISTRY:
        choices = " or ".join(repr(n) for n in _REGISTRY)
        raise ValueError(f"unknown backend {name!r}; expected {choices}")
    return name


BackendName = Annotated[str, AfterValidator(_registered)]
"""A field type accepting exactly the registered backend names."""
