"""A static embedding model for candidate search, distilled locally from the packaged MiniLM.

`model2vec <https://github.com/MinishLab/model2vec>`_ distils a sentence-transformer into
one vector per vocabulary token (every token run through the model once, then PCA and
Zipf weighting); a text's vector is the mean of its tokens'. Distillation reads the local
model folder only (``HF_HUB_OFFLINE=1``: no hub, no download). It takes a few minutes of CPU
once; the result is cached under ``$XDG_CACHE_HOME/persona-sandbox/static/<model id>/`` and
loads in well under a second after that. It then encodes thousands of texts per second.

It is a weaker sentence model than MiniLM, but a good near-duplicate finder: on the benchmark
corpus every pair at MiniLM cosine >= 0.9 has a static cosine above 0.72, which is what the
first stage of :class:`~personahub.dedup.two_stage.TwoStageDeduper` relies on. (Averaging
MiniLM's raw input token embeddings instead was measured and rejected: all its cosines sit
near 0.99.)
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import numpy as np

_lock = threading.Lock()
_cache: dict[Path, StaticEmbedder] = {}
PCA_DIMS = 256


def static_cache_dir() -> Path:
    """Where distilled static models are kept (beside the LLM response cache)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "persona-sandbox" / "static"


class StaticEmbedder:
    """A model2vec static model as an embedder: ``encode(texts)`` gives unit float32 rows.

    Args:
        model: A ``model2vec.StaticModel``.
        id: What the model is (the teacher's id with a ``m2v-`` prefix).
    """

    def __init__(self, model: Any, id: str) -> None:
        self.model = model
        self.id = id
        self.dim = int(model.dim)

    def encode(self, texts: list[str], batch_size: int = 4096, **_: object) -> np.ndarray:
        """``(n, dim)`` float32 unit rows (a text without known tokens gives a zero row)."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = np.asarray(self.model.encode(list(texts), batch_size=batch_size), np.float32)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        norms[norms == 0] = 1.0
        return vectors / norms


def get_static_embedder(model_path: Path | None = None) -> StaticEmbedder:
    """The process-wide static model distilled from a MiniLM folder (the packaged one by
    default), distilling and caching it on first use.

    Raises:
        RuntimeError: If model2vec is missing or the distillation fails.
    """
    from personahub.embeddings import default_model_path, model_id

    path = (Path(model_path) if model_path is not None else default_model_path()).resolve()
    with _lock:
        cached = _cache.get(path)
        if cached is not None:
            return cached
        teacher = model_id(path)
        folder = static_cache_dir() / teacher
        os.environ["HF_HUB_OFFLINE"] = "1"
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        try:
            from model2vec import StaticModel

            if not (folder / "model.safetensors").exists():
                from model2vec.distill import distill

                distilled = distill(model_name=str(path), pca_dims=PCA_DIMS)
                # Written beside, then renamed: a killed run leaves no half model behind.
                partial = folder.with_name(folder.name + ".partial")
                distilled.save_pretrained(str(partial))
                partial.replace(folder)
            model = StaticModel.from_pretrained(str(folder))
        except ImportError as exc:
            raise RuntimeError(f"two-stage dedup needs model2vec: {exc}") from exc
        except Exception as exc:  # one clear line for any distillation failure
            raise RuntimeError(f"cannot distil a static model from {path}: {exc}") from exc
        embedder = StaticEmbedder(model, f"m2v-{teacher}")
        _cache[path] = embedder
        return embedder
