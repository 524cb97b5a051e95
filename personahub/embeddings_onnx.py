"""The same sentence model on ONNX Runtime: MiniLM without torch at encoding time.

Measured on the shared 2-core machine (docs/embeddings.md): all-MiniLM-L6-v2 exported
locally and run on ONNX Runtime encodes several times faster than sentence-transformers on
torch, with the same vectors (max abs difference ~2e-7), so the stored vectors' embedder id
does not change.

The model is exported once per model id from the local folder (``torch.onnx.export``, the
TorchScript exporter; it needs torch, transformers and onnx, and nothing from a hub) to
``$XDG_CACHE_HOME/persona-sandbox/onnx/<model id>/model.onnx``. The exported graph is the
transformer plus sentence-transformers' mean pooling and normalisation; the attention mask is
built inside the wrapper (not by transformers' mask helpers, whose shape checks the tracer
would freeze at the example's length). Texts are tokenised with the model's own
``tokenizer.json`` (its fixed 128-token padding switched off, truncated at the model's
``max_seq_length`` as sentence-transformers does) and batched in length order, so a batch
pads to its longest text only.

Only folders whose pipeline is Transformer, mean Pooling (and Normalize) qualify; others, or a
missing ``onnxruntime``, stay on torch (:func:`onnx_embedder` returns None).

An int8 variant (``quantized=True``: ONNX Runtime dynamic quantisation of the export,
per-channel weights with reduced range, cached beside it as ``model.int8.onnx``) encodes about
twice as fast, but its vectors differ (cosine to the float vector down to 0.98), and its
keep/drop decisions agreed with the float model's on only 99.2% of the benchmark's first 3,000
texts (docs/embeddings.md). So it is opt-in, never the default, and its vectors are keyed by
their own embedder id (``<model id>-int8``): they never mix with float ones in a store.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

_SUPPORTED_MODULES = [
    "sentence_transformers.models.Transformer",
    "sentence_transformers.models.Pooling",
    "sentence_transformers.models.Normalize",
]


def onnx_cache_dir() -> Path:
    """Where exported models are kept (beside the distilled static models)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "persona-sandbox" / "onnx"


def _mean_pooled(path: Path) -> bool:
    """True when the folder's pipeline is Transformer + mean Pooling (+ Normalize)."""
    try:
        modules = json.loads((path / "modules.json").read_text())
        kinds = [m["type"] for m in modules]
        pooling = next(path / m["path"] for m in modules if m["type"].endswith("Pooling"))
        config = json.loads((pooling / "config.json").read_text())
    except (OSError, ValueError, KeyError, StopIteration):
        return False
    modes = {k for k, v in config.items() if k.startswith("pooling_mode") and v}
    return kinds == _SUPPORTED_MODULES[: len(kinds)] and modes == {"pooling_mode_mean_tokens"}


def export(path: Path, target: Path) -> None:
    """Export the model folder's transformer with mean pooling and normalisation to ONNX."""
    import torch
    from transformers import AutoModel

    model = AutoModel.from_pretrained(str(path), attn_implementation="eager").eval()

    class Pooled(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            hidden = self.model.embeddings(input_ids=input_ids, token_type_ids=token_type_ids)
            mask = attention_mask[:, None, None, :].to(hidden.dtype)
            additive = (1.0 - mask) * torch.finfo(hidden.dtype).min
            out = self.model.encoder(hidden, attention_mask=additive)[0]
            weights = attention_mask.unsqueeze(-1).to(out.dtype)
            pooled = (out * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, dim=1)

    names = ["input_ids", "attention_mask", "token_type_ids"]
    # A long example: nothing about the graph may depend on it, but a short one would hide
    # a length the tracer froze.
    example = torch.ones((2, 64), dtype=torch.long)
    axes = {name: {0: "batch", 1: "tokens"} for name in names}
    partial = target.with_name(target.name + ".partial")
    target.parent.mkdir(parents=True, exist_ok=True)
    with torch.no_grad():
        torch.onnx.export(
            Pooled().eval(),
            (example, example, torch.zeros_like(example)),
            str(partial),
            input_names=names,
            output_names=["embedding"],
            dynamic_axes={**axes, "embedding": {0: "batch"}},
            opset_version=17,
            dynamo=False,
        )
    # Renamed when whole: a killed export leaves no half model behind.
    partial.replace(target)


def quantize(source: Path, target: Path) -> None:
    """Write an int8 copy of an exported model: dynamic quantisation, per-channel weights.

    ``reduce_range`` (7-bit weights) avoids the saturation of int8 products on CPUs without
    VNNI instructions, and measured fastest on this machine (docs/embeddings.md).
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic

    partial = target.with_name(target.name + ".partial")
    quantize_dynamic(
        str(source), str(partial), per_channel=True, reduce_range=True,
        weight_type=QuantType.QInt8,
    )  # fmt: skip
    partial.replace(target)


class OnnxEmbedder:
    """A mean-pooled sentence-transformers model on ONNX Runtime: unit float32 rows.

    Args:
        session: An ``onnxruntime.InferenceSession`` of an :func:`export`-ed model.
        tokenizer: The model's ``tokenizers.Tokenizer`` (no padding, truncating).
        path: The model folder (its :func:`~personahub.embeddings.model_id` is the id).
        dim: The embedding width.
        quantized: Whether the session runs the int8 model (it changes the id).
    """

    def __init__(
        self, session: Any, tokenizer: Any, path: Path, dim: int, quantized: bool = False
    ) -> None:
        self._session = session
        self._tokenizer = tokenizer
        self.path = path
        self.dim = dim
        self.quantized = quantized

    @property
    def id(self) -> str:
        """The model's id (the same as on torch, since the float vectors are the same);
        with an ``-int8`` suffix for the quantised model, whose vectors differ."""
        from personahub.embeddings import model_id

        return model_id(self.path) + ("-int8" if self.quantized else "")

    def encode(
        self, texts: list[str], batch_size: int = 64, show_progress: bool = False
    ) -> np.ndarray:
        """Encode texts into an ``(n, dim)`` float32 array with unit-length rows.

        ``show_progress`` is accepted for the torch embedder's signature and ignored.
        """
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        encodings = self._tokenizer.encode_batch(list(texts))
        lengths = np.array([len(e.ids) for e in encodings])
        order = np.argsort(lengths, kind="stable")
        for start in range(0, len(texts), batch_size):
            rows = order[start : start + batch_size]
            ids = np.zeros((len(rows), int(lengths[rows].max())), dtype=np.int64)
            mask = np.zeros_like(ids)
            for row, index in enumerate(rows):
                ids[row, : lengths[index]] = encodings[index].ids
                mask[row, : lengths[index]] = 1
            feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
            out[rows] = self._session.run(None, feeds)[0]
        return out


def onnx_embedder(path: Path, quantized: bool = False) -> OnnxEmbedder | None:
    """The ONNX Runtime embedder of a model folder, exporting (and with ``quantized``,
    quantising) it on first use; None when ONNX Runtime is not installed or the folder's
    pipeline is not supported."""
    from personahub.embeddings import model_id

    try:
        import onnxruntime
        from tokenizers import Tokenizer
    except ImportError:
        return None
    if not _mean_pooled(path):
        return None
    target = onnx_cache_dir() / model_id(path) / "model.onnx"
    if not target.exists():
        export(path, target)
    if quantized:
        source, target = target, target.with_name("model.int8.onnx")
        if not target.exists():
            quantize(source, target)
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = os.cpu_count() or 1
    options.inter_op_num_threads = 1
    session = onnxruntime.InferenceSession(str(target), options, providers=["CPUExecutionProvider"])
    tokenizer = Tokenizer.from_file(str(path / "tokenizer.json"))
    tokenizer.no_padding()
    tokenizer.enable_truncation(_max_seq_length(path))
    return OnnxEmbedder(session, tokenizer, path, _pooled_dim(path), quantized)


def _max_seq_length(path: Path) -> int:
    # sentence-transformers truncates at this length (256 for MiniLM), not at the 128 the
    # tokenizer file pads and truncates to.
    config = path / "sentence_bert_config.json"
    found = json.loads(config.read_text()).get("max_seq_length") if config.exists() else None
    return int(found or 512)


def _pooled_dim(path: Path) -> int:
    modules = json.loads((path / "modules.json").read_text())
    pooling = next(path / m["path"] for m in modules if m["type"].endswith("Pooling"))
    return int(json.loads((pooling / "config.json").read_text())["word_embedding_dimension"])
