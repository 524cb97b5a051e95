"""Configuration of the LLM gateway: one pydantic settings object.

Sources, highest priority first: explicit values (CLI flags), environment variables
(``PERSONAHUB_*``, plus ``OPENAI_BASE_URL`` / ``OPENAI_API_KEY``), a TOML config file
(``--config``, ``$PERSONAHUB_CONFIG`` or ``./persona-sandbox.toml``, table ``[llm]``), defaults.
"""

from __future__ import annotations

import json
import os
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AliasChoices,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

from personahub.llm.backends import LOCAL_MODEL_NAME, BackendName, backend_spec
from personahub.urls import mask_url, url_secrets

DEFAULT_CONFIG_FILE = "persona-sandbox.toml"
__all__ = ["LOCAL_MODEL_NAME", "ConfigError", "LLMSettings", "config_table", "load_settings"]


def default_cache_path() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "persona-sandbox" / "llm-cache.sqlite"


class ConfigError(ValueError):
    """Bad configuration, explained in one line."""


class LLMSettings(BaseSettings):
    """Everything the gateway needs to know. Secrets are ``SecretStr`` and never printed."""

    model_config = SettingsConfigDict(
        env_prefix="PERSONAHUB_",
        populate_by_name=True,
        extra="forbid",
        validate_default=True,
    )

    backend: BackendName = Field(
        "local",
        description="A registered backend: `local` (embedded GGUF model) or `openai` (any "
        "compatible server).",
    )
    model: str | None = Field(None, description="Model name; defaults depend on the backend.")
    base_urls: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        validation_alias=AliasChoices("PERSONAHUB_BASE_URLS"),
        description="OpenAI-compatible endpoints sharing the load (least in flight first).",
    )
    base_url: str | None = Field(
        None,
        validation_alias=AliasChoices("PERSONAHUB_BASE_URL", "OPENAI_BASE_URL"),
    )
    api_key: SecretStr | None = Field(
        None, validation_alias=AliasChoices("PERSONAHUB_API_KEY", "OPENAI_API_KEY")
    )
    model_path: Path | None = Field(None, description="GGUF file for the local backend.")
    local_threads: int | None = Field(None, ge=1, description="CPU threads per local instance.")
    local_instances: int = Field(
        2,
        ge=1,
        le=16,
        description="Local model copies decoding side by side, each with its share of the "
        "cores. Two single-thread copies beat one two-thread copy on 2 cores, by far when "
        "the cores are busy (benchmarks/local_model.py).",
    )
    local_ctx: int = Field(4096, ge=256)
    local_repeat_penalty: float = Field(
        1.1, ge=1.0, le=2.0, description="Discourages the small model's greedy repetition loops."
    )
    structured_mode: Literal["auto", "json_schema", "json_object", "prompt"] = "auto"
    temperature: float = Field(0.7, ge=0, le=2)
    max_tokens: int = Field(512, ge=1)
    timeout_s: float = Field(60.0, gt=0)
    max_retries: int = Field(4, ge=0)
    backoff_base_s: float = Field(0.5, ge=0)
    backoff_max_s: float = Field(30.0, ge=0)
    max_reasks: int = Field(2, ge=0)
    option_samples: int = Field(
        10,
        ge=1,
        le=100,
        description="Sampled answers per option request where the backend or server gives "
        "no token probabilities (the distribution is then their shares).",
    )
    concurrency: int = Field(16, ge=1)
    cache: bool = True
    cache_path: Path = Field(default_factory=default_cache_path)
    max_calls: int | None = Field(None, ge=1, description="Budget: model calls per run.")
    max_total_tokens: int | None = Field(None, ge=1, description="Budget: tokens per run.")
    price_in: float | None = Field(
        None,
        ge=0,
        allow_inf_nan=False,
        description="Price per million prompt tokens (money in the run summary and estimate).",
    )
    price_out: float | None = Field(
        None,
        ge=0,
        allow_inf_nan=False,
        description="Price per million completion tokens; set together with price_in.",
    )
    # Older run databases record these (per 1,000 tokens); price_in/price_out win when set.
    price_per_1k_prompt: float = Field(0.0, ge=0, allow_inf_nan=False)
    price_per_1k_completion: float = Field(0.0, ge=0, allow_inf_nan=False)
    chars_per_token: float = Field(
        4.0,
        gt=0,
        le=100,
        allow_inf_nan=False,
        description="Characters per token where the estimate cannot use the model's own "
        "tokenizer (a served model): about 4 for English under GPT-style tokenizers.",
    )

    @model_validator(mode="after")
    def _prices_in_pairs(self) -> LLMSettings:
        # One price alone would make every cost figure silently half a cost.
        if (self.price_in is None) != (self.price_out is None):
            given, missing = ("price_in", "price_out")[:: 1 if self.price_in is not None else -1]
            raise ValueError(
                f"{missing}: expected with {given} (prices per million tokens come in pairs)"
            )
        return self

    @property
    def priced(self) -> bool:
        """Whether a price per token is configured (money can be shown)."""
        return self.price_in is not None or bool(
            self.price_per_1k_prompt or self.price_per_1k_completion
        )

    def token_prices(self) -> tuple[float, float]:
        """(prompt, completion) price per token; 0 when unpriced."""
        if self.price_in is not None and self.price_out is not None:
            return self.price_in / 1e6, self.price_out / 1e6
        return self.price_per_1k_prompt / 1e3, self.price_per_1k_completion / 1e3

    @field_validator("base_urls", mode="before")
    @classmethod
    def _split_urls(cls, value: Any) -> Any:
        if isinstance(value, str):
            if value.lstrip().startswith("["):
                try:
                    return json.loads(value)
                except json.JSONDecodeError:
                    pass
            return [u.strip() for u in value.split(",") if u.strip()]
        return value

    @property
    def endpoints(self) -> list[str]:
        """All configured base URLs, deduplicated, in order."""
        urls = list(self.base_urls)
        if self.base_url and self.base_url not in urls:
            urls.insert(0, self.base_url)
        return urls

    @property
    def model_name(self) -> str:
        if self.model:
            return self.model
        return backend_spec(self.backend).default_model

    def secrets(self) -> list[str]:
        """Secret strings that must be scrubbed from anything we record: the API key and
        the passwords of base URLs (shorter ones would scrub ordinary words)."""
        key = self.api_key.get_secret_value() if self.api_key else ""
        return [s for s in (key, *url_secrets(self.endpoints)) if len(s) >= 4]

    def recorded(self) -> dict[str, Any]:
        """The whole effective configuration as plain data, safe to store with a run: every
        field but the API key, the model name resolved and base-URL passwords masked.
        ``load_settings(**recorded())`` (plus a key) rebuilds the same gateway."""
        out = self.model_dump(mode="json", exclude={"api_key"})
        out["model"] = self.model_name
        out["base_url"] = mask_url(self.base_url) if self.base_url else None
        out["base_urls"] = [mask_url(url) for url in self.endpoints]
        return out

    def describe(self) -> dict[str, Any]:
        """A safe, printable summary (no secrets)."""
        out: dict[str, Any] = {"backend": self.backend, "model": self.model_name}
        if self.backend == "openai":
            out["endpoints"] = [mask_url(url) for url in self.endpoints]
            out["api_key"] = "set" if self.api_key else "not set"
        else:
            out["model_path"] = str(self.model_path) if self.model_path else "(packaged)"
            out["instances"] = self.local_instances
        out["cache"] = str(self.cache_path) if self.cache else "off"
        return out

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _TomlSource(settings_cls))


class _TomlSource(PydanticBaseSettingsSource):
    """Reads the ``[llm]`` table of the config file named by ``_config_file`` context."""

    path: Path | None = None

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        path = _TomlSource.path
        if path is None:
            env = os.environ.get("PERSONAHUB_CONFIG")
            path = Path(env) if env else Path(DEFAULT_CONFIG_FILE)
            if not env and not path.exists():
                return {}
        # Other sources key aliased fields by their first alias; use the same key, or the
        # merged values would hold the field twice.
        table = config_table(path)
        return {_source_key(self.settings_cls, key): value for key, value in table.items()}


def config_table(path: Path) -> dict[str, Any]:
    """The ``[llm]`` table of a TOML config file.

    Raises:
        ConfigError: The file is missing, not TOML, or its ``llm`` is not a table.
    """
    if not path.exists():
        raise ConfigError(f"config file {path} not found")
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    table = data.get("llm", {})
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: [llm] must be a table")
    return table


def _source_key(settings_cls: type[BaseSettings], key: str) -> str:
    field = settings_cls.model_fields.get(key)
    alias = field.validation_alias if field is not None else None
    return str(alias.choices[0]) if isinstance(alias, AliasChoices) else key


def load_settings(config_file: Path | None = None, **overrides: Any) -> LLMSettings:
    """Build settings from overrides (None values ignored), env and the config file.

    Raises:
        ConfigError: with one readable line naming the offending field.
    """
    clean = {k: v for k, v in overrides.items() if v is not None}
    _TomlSource.path = config_file
    try:
        return LLMSettings(**clean)
    except ValidationError as exc:
        raise ConfigError(explain_validation_error(exc)) from None
    except SettingsError as exc:
        raise ConfigError(str(exc)) from None
    finally:
        _TomlSource.path = None


_FIELD_OF_ALIAS = {
    str(alias): name
    for name, field in LLMSettings.model_fields.items()
    if isinstance(field.validation_alias, AliasChoices)
    for alias in field.validation_alias.choices
}


def explain_validation_error(exc: ValidationError) -> str:
    """One line per problem: field, what was expected, what was found."""
    parts = []
    for err in exc.errors():
        # Report aliased fields (e.g. PERSONAHUB_API_KEY) by their field name.
        loc = ".".join(_FIELD_OF_ALIAS.get(str(p), str(p)) for p in err["loc"])
        if not loc and err["type"] == "value_error":
            # A check across fields (a model validator) names its own field.
            parts.append(str(err["ctx"]["error"]))
            continue
        loc = loc or "settings"
        found = err.get("input")
        found_text = "" if isinstance(found, dict) else f" (found {found!r})"
        if loc == "api_key":
            found_text = ""
        parts.append(f"{loc}: {err['msg']}{found_text}")
    return "; ".join(parts)
