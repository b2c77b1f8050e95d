"""The learned statement scorer: a logistic regression over ``digest.features`` and the statement's MiniLM
vector, trained on editor-labelled real days by ``bench/train_ranker.py``; its data card is
``digest/data/RANKER.md``.

The weights ship inside the package as JSON and load without network. A score is a log-odds that an
editor would pick the statement; ``explain`` says which features moved it most.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import numpy as np

from digest.features import NAMES

MODEL_VERSION = 1


@dataclass
class Ranker:
    """A fitted logistic regression on standardised inputs: the named features, then (when ``embedding``)
    the dimensions of the statement's vector."""

    features: list[str]
    mean: np.ndarray
    scale: np.ndarray
    weights: np.ndarray
    bias: float
    embedding: bool = False
    version: int = MODEL_VERSION

    def scores(self, x: np.ndarray, vectors: np.ndarray) -> np.ndarray:
        """Log-odds per row of ``x`` (columns in ``digest.features.NAMES`` order) and of ``vectors``."""
        return self._standard(x, vectors) @ self.weights + self.bias

    def explain(self, row: np.ndarray, vector: np.ndarray, top: int = 4) -> dict[str, float]:
        """The inputs that moved one statement's score most, in log-odds; the vector's dimensions count
        together as ``content``, what the statement is about."""
        parts = self._standard(row[None, :], vector[None, :])[0] * self.weights
        named = dict(zip(self.features, parts[: len(self.features)].tolist()))
        if self.embedding:
            named["content"] = float(parts[len(self.features) :].sum())
        order = sorted(named, key=lambda k: -abs(named[k]))[:top]
        return {k: round(named[k], 3) for k in order}

    def _standard(self, x: np.ndarray, vectors: np.ndarray) -> np.ndarray:
        columns = x[:, [NAMES.index(f) for f in self.features]]
        if self.embedding:
            columns = np.hstack([columns, vectors])
        return (columns - self.mean) / self.scale

    def to_json(self) -> dict:
        return {
            "version": self.version,
            "features": self.features,
            "mean": self.mean.round(6).tolist(),
            "scale": self.scale.round(6).tolist(),
            "weights": self.weights.round(6).tolist(),
            "bias": round(float(self.bias), 6),
            "embedding": self.embedding,
        }

    @classmethod
    def from_json(cls, data: dict) -> Ranker:
        if data.get("version") != MODEL_VERSION:
            raise ValueError(f"ranker weights are version {data.get('version')}, this digest reads {MODEL_VERSION}")
        unknown = set(data["features"]) - set(NAMES)
        if unknown:
            raise ValueError(f"ranker weights name unknown features: {sorted(unknown)}")
        return cls(
            list(data["features"]),
            np.asarray(data["mean"], dtype=np.float32),
            np.asarray(data["scale"], dtype=np.float32),
            np.asarray(data["weights"], dtype=np.float32),
            float(data["bias"]),
            bool(data.get("embedding", False)),
        )


@lru_cache(maxsize=1)
def bundled() -> Ranker:
    """The ranker shipped in ``digest/data/ranker.json``."""
    text = resources.files("digest.data").joinpath("ranker.json").read_text(encoding="utf-8")
    return Ranker.from_json(json.loads(text))
