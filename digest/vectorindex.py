"""FAISS index files that can always be rebuilt from SQLite: loaded when current, rebuilt when missing or corrupt."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from digest.errors import DigestError

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
    for p in (path, meta):
        if p.exists() and not p.is_file():
            raise DigestError(f"{p} is in the way of an index file; remove it and digest rebuilds the index")
    if path.exists() and meta.exists():
        try:
            if json.loads(meta.read_text())["key"] == key:
                # Memory-mapped: a one-shot `digest search` reads only the pages a query touches.
                return faiss.read_index(str(path), faiss.IO_FLAG_MMAP)
        except (ValueError, KeyError, RuntimeError) as exc:
            log.warning("index %s is unreadable (%s); rebuilding it from the store", path, exc)
    ids, vectors = build()
    index = _new_index(np.ascontiguousarray(vectors, dtype=np.float32), np.asarray(ids, dtype=np.int64))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    faiss.write_index(index, str(tmp))
    os.replace(tmp, path)
    meta.write_text(json.dumps({"key": key, "rows": int(index.ntotal)}))
    return index


LARGE = 100_000  # from here on, an exact scan costs more than the 50 ms a search may take


def _new_index(vectors: np.ndarray, ids: np.ndarray):
    """Exact inner product for small sets; IVF-PQ (compact, ~1 ms a query) for large ones."""
    import faiss

    dim = vectors.shape[1] if vectors.ndim == 2 and vectors.shape[1] else 384
    index: Any
    if len(ids) < LARGE:
        index = faiss.IndexIDMap(faiss.IndexFlatIP(dim))
    else:
        nlist = int(4 * np.sqrt(len(ids)))
        index = faiss.IndexIVFPQ(faiss.IndexFlatIP(dim), dim, nlist, 48, 8, faiss.METRIC_INNER_PRODUCT)
        sample = vectors[np.random.default_rng(0).choice(len(vectors), min(len(vectors), 40 * nlist), replace=False)]
        index.train(sample)
        index.nprobe = 16
    if len(ids):
        index.add_with_ids(vectors, ids)
    return index


def vectors_of(index: Any) -> np.ndarray:
    """Every vector an ``IndexIDMap`` over a flat index holds."""
    import faiss

    flat: Any = faiss.downcast_index(index.index)
    return faiss.rev_swig_ptr(flat.get_xb(), flat.ntotal * flat.d).reshape(flat.ntotal, flat.d).copy()
