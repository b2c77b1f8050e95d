"""FAISS index files that can always be rebuilt from SQLite: loaded when current, rebuilt when missing or corrupt."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)


def load_or_build(path: Path, key: str, build: Callable[[], tuple[np.ndarray, np.ndarray]]):
    """A FAISS ``IndexIDMap`` over inner product, cached at ``path``.

    Args:
        path: The index file; ``<path>.json`` beside it records what it was built from.
        key: Describes the rows the index must hold (model, cut-off date, row count...).
            A file built for another key, or one that fails to load, is rebuilt.
        build: Returns ``(ids, unit vectors)`` from the store.
    """
    import faiss

    meta = path.with_name(path.name + ".json")
    if path.exists() and meta.exists():
        try:
            if json.loads(meta.read_text())["key"] == key:
                return faiss.read_index(str(path))
        except (ValueError, KeyError, RuntimeError) as exc:
            log.warning("index %s is unreadable (%s); rebuilding it from the store", path, exc)
    ids, vectors = build()
    dim = vectors.shape[1] if vectors.ndim == 2 and vectors.shape[1] else 384
    index = faiss.IndexIDMap(faiss.IndexFlatIP(dim))
    if len(ids):
        index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), np.asarray(ids, dtype=np.int64))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    faiss.write_index(index, str(tmp))
    os.replace(tmp, path)
    meta.write_text(json.dumps({"key": key, "rows": int(index.ntotal)}))
    return index


def vectors_of(index) -> np.ndarray:
    """Every vector an ``IndexIDMap`` over a flat index holds."""
    import faiss

    flat = faiss.downcast_index(index.index)
    return faiss.rev_swig_ptr(flat.get_xb(), flat.ntotal * flat.d).reshape(flat.ntotal, flat.d).copy()
