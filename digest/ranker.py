"""The learned statement scorer, trained by ``bench/train_ranker.py``; its data card is
``digest/data/RANKER.md``. Two logistic regressions add up:

* the editor head, over ``digest.features`` and the statement's MiniLM vector, trained on editor-labelled
  real days: the log-odds that an editor would pick the statement;
* the reader head, over the features alone, trained on the judged picks of those days: the log-odds that a
  reader takes the statement, shown alone, for an insight rather than filler. It counts ``quality_weight``
  times.

The weights ship inside the package as JSON and load without network. ``explain`` says which features
moved a score most.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import numpy as np

from digest.features import NAMES

MODEL_VERSION = 2


@dataclass
class Ranker:
    """A fitted logistic regression on standardised inputs: the named features, then (when ``embedding``)
    the dimensions of the statement's vector; plus ``quality_weight`` times the ``quality`` head, when
    there is one. The named features are first held to the range seen in training (``low`` to ``high``),
    so that an input no training statement had (a one-statement episode spends all its time on its
    topic) cannot outweigh everything else."""

    features: list[str]
    mean: np.ndarray
    scale: np.ndarray
    weights: np.ndarray
    bias: float
    low: np.ndarray | None = None
    high: np.ndarray | None = None
    embedding: bool = False
    quality: Ranker | None = None  # the reader head: insight rather than filler, by the features alone
    quality_weight: float = 0.0
    version: int = MODEL_VERSION

    def scores(self, x: np.ndarray, vectors: np.ndarray) -> np.ndarray:
        """Log-odds per row of ``x`` (columns in ``digest.features.NAMES`` order) and of ``vectors``."""
        own = self._standard(x, vectors) @ self.weights + self.bias
        return own if self.quality is None else own + self.quality_weight * self.quality.scores(x, vectors)

    def explain(self, row: np.ndarray, vector: np.ndarray, top: int = 4) -> dict[str, float]:
        """The inputs that moved one statement's score most, in log-odds; the vector's dimensions count
        together as ``content``, what the statement is about."""
        named = self._parts(row, vector)
        if self.quality is not None:
            for name, part in self.quality._parts(row, vector).items():
                named[name] = named.get(name, 0.0) + self.quality_weight * part
        order = sorted(named, key=lambda k: -abs(named[k]))[:top]
        return {k: round(named[k], 3) for k in order}

    def _parts(self, row: np.ndarray, vector: np.ndarray) -> dict[str, float]:
        parts = self._standard(row[None, :], vector[None, :])[0] * self.weights
        named = dict(zip(self.features, parts[: len(self.features)].tolist()))
        if self.embedding:
            named["content"] = float(parts[len(self.features) :].sum())
        return named

    def _standard(self, x: np.ndarray, vectors: np.ndarray) -> np.ndarray:
        columns = x[:, [NAMES.index(f) for f in self.features]]
        if self.low is not None and self.high is not None:
            columns = np.clip(columns, self.low, self.high)
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
            **(
                {"low": self.low.round(6).tolist(), "high": self.high.round(6).tolist()}
                if self.low is not None and self.high is not None
                else {}
            ),
            "embedding": self.embedding,
            **({"quality": self.quality.to_json(), "quality_weight": self.quality_weight} if self.quality else {}),
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
            np.asarray(data["low"], dtype=np.float32) if "low" in data else None,
            np.asarray(data["high"], dtype=np.float32) if "high" in data else None,
            bool(data.get("embedding", False)),
            cls.from_json(data["quality"]) if "quality" in data else None,
            float(data.get("quality_weight", 0.0)),
        )


@lru_cache(maxsize=1)
def bundled() -> Ranker:
    """The ranker shipped in ``digest/data/ranker.json``."""
    text = resources.files("digest.data").joinpath("ranker.json").read_text(encoding="utf-8")
    return Ranker.from_json(json.loads(text))
