"""Which model a run talks to: recorded when it starts, the same when it resumes.

A run stores its whole effective LLM configuration (:meth:`LLMSettings.recorded`: no API key,
base-URL passwords masked). ``resume`` rebuilds the gateway from it, so a run started with
``--config served.toml`` does not finish on the embedded model because the file was not
named again. Flags and a config file named on resume still override what was recorded; if
that changes the backend or the model, resuming needs ``--switch-model`` and the change is
recorded with the run.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from personahub.llm import LLMClient, load_settings
from personahub.llm.backends import LOCAL_MODEL_NAME
from personahub.llm.settings import config_table
from personahub.urls import MASK
from sandbox.rundb import RunDatabase, RunRow

SWITCHES = "model_switches"
"""Key of ``llm_config`` listing the backend/model changes made on resume."""


class ModelSwitchError(RuntimeError):
    """Resuming would change the run's model without ``--switch-model``; one line."""


def resume_settings_overrides(
    run: RunRow, cli: dict[str, Any], config_file: Path | None
) -> dict[str, Any]:
    """The settings of a resumed run: what it recorded, then the config file and the flags
    given now.

    Raises:
        ConfigError: The config file cannot be read.
        ModelSwitchError: A recorded base URL had a password, which is never stored, and no
            ``--base-url`` gives it again.
    """
    overrides = {k: v for k, v in run.llm_config.items() if k != SWITCHES}
    if config_file is not None:
        overrides.update(config_table(config_file))
    overrides.update({k: v for k, v in cli.items() if v is not None})
    urls = [*overrides.get("base_urls", []), overrides.get("base_url") or ""]
    if any(f":{MASK}@" in url for url in urls):
        raise ModelSwitchError(
            "the run's base URL carried a password, which is not stored; "
            "give the URL again with --base-url"
        )
    return overrides


def check_model(database: RunDatabase, run: RunRow, client: LLMClient, switch_model: bool) -> None:
    """Refuse a resume on another backend or model unless ``switch_model``; record a
    switch (backend, model, the new configuration and the step it took effect)."""
    before, after = f"{run.backend}:{run.model}", f"{client.backend.name}:{client.model}"
    if before == after:
        return
    if not switch_model:
        raise ModelSwitchError(
            f"run {run.id} ran on {before} and would resume on {after}; "
            "pass --switch-model to continue it on another model (the change is recorded)"
        )
    switches = [
        *run.llm_config.get(SWITCHES, []),
        {
            "from": before,
            "to": after,
            "at_step": run.last_step + 1,
            "when": datetime.now(UTC).isoformat(timespec="seconds"),
        },
    ]
    config = {**client.settings.recorded(), SWITCHES: switches}
    database.set_llm(run.id, client.backend.name, client.model, config)


def client_for_resume(run: RunRow, cli: dict[str, Any], config_file: Path | None) -> LLMClient:
    """A gateway client for resuming ``run`` (see :func:`resume_settings_overrides`)."""
    return LLMClient(load_settings(config_file, **resume_settings_overrides(run, cli, config_file)))


def embedded_model_caveat(backend: str, model: str) -> str:
    """The warning a report shows when the embedded model answered the run ("" otherwise):
    its answers exercise the pipeline, they forecast nothing."""
    if backend != "local" or model != LOCAL_MODEL_NAME:
        return ""
    return (
        f"These answers come from the embedded {model} model: plumbing, not a forecaster. "
        "It shows the pipeline works end to end; its figures say nothing about what people "
        "would do. Run on a served model (--base-url, --model) for a forecast."
    )
