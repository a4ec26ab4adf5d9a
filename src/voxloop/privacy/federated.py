"""Federated training of the intent classifier, simulated: utterances never leave a device.

- **Devices** each hold one user's (or one speaker group's) utterances, non-IID by domain
  (`partition_by_domain`: each domain's utterances are dealt to devices in Dirichlet(alpha)
  proportions, so a device mostly speaks about a few domains). A `Device` turns its texts
  into features itself and answers `Device.fit` with model weights and a count: the only
  thing that crosses the wire is `Update` — arrays of the model's shapes — never text.
- **Features need no shared vocabulary**: word 1–3-grams and character 2–5-grams hashed
  into ``dim`` buckets (signed, sublinear TF, each block L2-normalised), optionally with the
  multilingual USE sentence vector the classical parser uses.
- **Model**: a softmax (multinomial logistic) intent classifier, trained by mini-batch SGD.
- **Server**: federated averaging (McMahan et al. 2017): each round a sample of devices
  trains the global model for a few local epochs; the server averages their weights,
  weighted by their utterance counts. Optionally DP-FedAvg style: each device's update is
  clipped to L2 norm ``clip`` and Gaussian noise of std ``noise_multiplier * clip`` is added
  to the sum (McMahan et al. 2018); no privacy accountant is run here.

This is voxloop's own numpy implementation with Flower's split of roles (a client's
``fit(parameters, config) -> (parameters, num_examples)``, a FedAvg strategy); see
RESULTS.md for why Flower itself is not a dependency.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from voxloop.errors import ConfigError
from voxloop.nlu.ngrams import char_wb_ngrams, word_ngrams
from voxloop.schema import Utterance

__all__ = [
    "Device",
    "FedAvgConfig",
    "HashedFeatures",
    "RoundLog",
    "SoftmaxModel",
    "Update",
    "federated_training",
    "centralised_training",
    "partition_by_domain",
]


# --- features (computed on the device) ------------------------------------------------
@dataclass(frozen=True)
class HashedFeatures:
    """Hashed n-grams (and optionally the USE sentence vector): the same function on every
    device, no vocabulary to share."""

    dim: int = 1 << 14
    sentence_vectors: bool = False

    @property
    def n_features(self) -> int:
        return self.dim + (512 if self.sentence_vectors else 0)

    def _block(self, grams: list[str]) -> dict[int, float]:
        counts: dict[int, float] = {}
        for g in grams:
            h = zlib.crc32(g.encode())
            sign = 1.0 if h & 0x80000000 else -1.0
            j = h % self.dim
            counts[j] = counts.get(j, 0.0) + sign
        out = {j: np.sign(v) * (1 + np.log(abs(v))) for j, v in counts.items() if v}
        norm = float(np.sqrt(sum(v * v for v in out.values()))) or 1.0
        return {j: v / norm for j, v in out.items()}

    def transform(self, texts: Sequence[str]) -> sp.csr_matrix:
        """Rows of features, one per text (sparse)."""
        indptr: list[int] = [0]
        indices: list[int] = []
        data: list[float] = []
        for text in texts:
            row: dict[int, float] = {}
            for block in (self._block(word_ngrams(text)), self._block(char_wb_ngrams(text, 2))):
                for j, v in block.items():
                    row[j] = row.get(j, 0.0) + v
            indices.extend(row)
            data.extend(row.values())
            indptr.append(len(indices))
        x = sp.csr_matrix(
            (np.asarray(data, np.float32), np.asarray(indices, np.int64), indptr),
            shape=(len(texts), self.dim),
        )
        if not self.sentence_vectors:
            return x
        from voxloop.nlu.intent_classifier import _SentenceEncoder

        vectors = _SentenceEncoder.encode(texts)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True) + 1e-8
        return sp.hstack([x, sp.csr_matrix(vectors)], format="csr", dtype=np.float32)


# --- the model ------------------------------------------------------------------------
@dataclass
class SoftmaxModel:
    """Multinomial logistic regression: ``weights`` (features × intents) and ``bias``."""

    weights: np.ndarray
    bias: np.ndarray

    @classmethod
    def zeros(cls, n_features: int, n_classes: int) -> SoftmaxModel:
        return cls(np.zeros((n_features, n_classes), np.float32), np.zeros(n_classes, np.float32))

    def copy(self) -> SoftmaxModel:
        return SoftmaxModel(self.weights.copy(), self.bias.copy())

    def scores(self, x: sp.csr_matrix) -> np.ndarray:
        return np.asarray(x @ self.weights) + self.bias

    def accuracy(self, x: sp.csr_matrix, y: np.ndarray) -> float:
        return float(np.mean(self.scores(x).argmax(axis=1) == y)) if len(y) else 0.0

    def sgd(
        self,
        x: sp.csr_matrix,
        y: np.ndarray,
        *,
        epochs: int,
        lr: float,
        batch_size: int,
        rng: np.random.Generator,
    ) -> None:
        """Mini-batch SGD on the cross-entropy, in place (only the rows a batch touches)."""
        n = x.shape[0]
        for _ in range(epochs):
            order = rng.permutation(n)
            for start in range(0, n, batch_size):
                rows = order[start : start + batch_size]
                xb = x[rows]
                cols = np.unique(xb.indices)
                xs = xb[:, cols]
                z = np.asarray(xs @ self.weights[cols]) + self.bias
                z -= z.max(axis=1, keepdims=True)
                p = np.exp(z)
                p /= p.sum(axis=1, keepdims=True)
                p[np.arange(len(rows)), y[rows]] -= 1.0
                p /= len(rows)
                self.weights[cols] -= lr * np.asarray(xs.T @ p, dtype=np.float32)
                self.bias -= lr * p.sum(axis=0).astype(np.float32)


@dataclass(frozen=True)
class Update:
    """What a device sends back: model arrays and how many utterances they were fitted on.
    Nothing else — no text, no features, no labels."""

    weights: np.ndarray
    bias: np.ndarray
    num_examples: int

    @property
    def nbytes(self) -> int:
        return int(self.weights.nbytes + self.bias.nbytes + 8)


class Device:
    """One simulated device: its utterances stay in here; it trains on request."""

    def __init__(
        self,
        utterances: Sequence[Utterance],
        intents: Sequence[str],
        features: HashedFeatures,
        seed: int = 0,
    ) -> None:
        index = {name: i for i, name in enumerate(intents)}
        self._x = features.transform([u.text for u in utterances])
        self._y = np.asarray([index[u.intent] for u in utterances if u.intent], dtype=np.int64)
        self._rng = np.random.default_rng(seed)

    @property
    def num_examples(self) -> int:
        return int(self._x.shape[0])

    def fit(self, global_model: SoftmaxModel, config: FedAvgConfig) -> Update:
        """Train the global model locally; return the new weights (clipped, when asked)."""
        model = global_model.copy()
        model.sgd(self._x, self._y, epochs=config.local_epochs, lr=config.lr,
                  batch_size=config.batch_size, rng=self._rng)  # fmt: skip
        weights, bias = model.weights, model.bias
        if config.clip is not None:
            dw, db = weights - global_model.weights, bias - global_model.bias
            norm = float(np.sqrt(np.sum(dw * dw) + np.sum(db * db)))
            scale = min(1.0, config.clip / (norm + 1e-12))
            weights = global_model.weights + dw * scale
            bias = global_model.bias + db * scale
        return Update(weights, bias, self.num_examples)


# --- the server -----------------------------------------------------------------------
@dataclass(frozen=True)
class FedAvgConfig:
    """Rounds, devices per round, local training, and optional clipping + noise."""

    rounds: int = 30
    devices_per_round: int = 20
    local_epochs: int = 2
    lr: float = 1.0
    batch_size: int = 16
    clip: float | None = None
    noise_multiplier: float = 0.0
    server_momentum: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("rounds", "devices_per_round", "local_epochs", "batch_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ConfigError(f"must be a whole number >= 1, got {value!r}", key=name)
        if not self.lr > 0:
            raise ConfigError(f"must be positive, got {self.lr}", key="lr")
        if self.clip is not None and not self.clip > 0:
            raise ConfigError(f"must be positive, got {self.clip}", key="clip")
        if not 0 <= self.server_momentum < 1:
            raise ConfigError(
                f"must be in [0, 1), got {self.server_momentum}", key="server_momentum"
            )
        if self.noise_multiplier < 0 or (self.noise_multiplier > 0 and self.clip is None):
            raise ConfigError("noise needs clip, and must not be negative", key="noise_multiplier")


@dataclass
class RoundLog:
    """Per round: test accuracy and the bytes sent down (model) and up (updates)."""

    accuracy: list[float] = field(default_factory=list)
    bytes_down: list[int] = field(default_factory=list)
    bytes_up: list[int] = field(default_factory=list)


def federated_training(
    devices: Sequence[Device],
    n_features: int,
    n_classes: int,
    config: FedAvgConfig,
    *,
    test: tuple[sp.csr_matrix, np.ndarray] | None = None,
) -> tuple[SoftmaxModel, RoundLog]:
    """FedAvg over ``devices``; the test accuracy after each round when ``test`` is given."""
    rng = np.random.default_rng(config.seed)
    model = SoftmaxModel.zeros(n_features, n_classes)
    log = RoundLog()
    velocity = (np.zeros_like(model.weights), np.zeros_like(model.bias))
    for _ in range(config.rounds):
        chosen = rng.choice(len(devices), size=min(config.devices_per_round, len(devices)),
                            replace=False)  # fmt: skip
        updates = [devices[i].fit(model, config) for i in chosen]
        model_bytes = model.weights.nbytes + model.bias.nbytes
        log.bytes_down.append(int(model_bytes * len(chosen)))
        log.bytes_up.append(sum(u.nbytes for u in updates))
        if config.clip is not None:  # DP-FedAvg: unweighted mean of clipped updates + noise
            dw = sum((u.weights - model.weights for u in updates), np.zeros_like(model.weights))
            db = sum((u.bias - model.bias for u in updates), np.zeros_like(model.bias))
            sd = config.noise_multiplier * config.clip
            if sd:
                dw = dw + rng.normal(0, sd, dw.shape).astype(np.float32)
                db = db + rng.normal(0, sd, db.shape).astype(np.float32)
            dw, db = dw / len(updates), db / len(updates)
        else:  # FedAvg: the mean of the updates weighted by utterance counts
            total = sum(u.num_examples for u in updates)
            dw = np.zeros_like(model.weights)
            db = np.zeros_like(model.bias)
            for u in updates:
                dw += (u.weights - model.weights) * (u.num_examples / total)
                db += (u.bias - model.bias) * (u.num_examples / total)
        if config.server_momentum:  # FedAvgM (Hsu et al. 2019)
            velocity = (velocity[0] * config.server_momentum + dw,
                        velocity[1] * config.server_momentum + db)  # fmt: skip
            dw, db = velocity
        model = SoftmaxModel(model.weights + dw, model.bias + db)
        if test is not None:
            log.accuracy.append(model.accuracy(*test))
    return model, log


def centralised_training(
    x: sp.csr_matrix,
    y: np.ndarray,
    n_classes: int,
    *,
    epochs: int,
    lr: float = 1.0,
    batch_size: int = 16,
    seed: int = 0,
    test: tuple[sp.csr_matrix, np.ndarray] | None = None,
) -> tuple[SoftmaxModel, list[float]]:
    """The same model trained on all the data in one place; test accuracy per epoch."""
    model = SoftmaxModel.zeros(x.shape[1], n_classes)
    rng = np.random.default_rng(seed)
    accuracy = []
    for _ in range(epochs):
        model.sgd(x, y, epochs=1, lr=lr, batch_size=batch_size, rng=rng)
        if test is not None:
            accuracy.append(model.accuracy(*test))
    return model, accuracy


def partition_by_domain(
    utterances: Sequence[Utterance], n_devices: int, *, alpha: float = 0.5, seed: int = 0
) -> list[list[Utterance]]:
    """Deal each domain's utterances to devices in Dirichlet(``alpha``) proportions (small
    alpha: each device speaks about few domains). Devices left empty are dropped."""
    if n_devices < 1 or not alpha > 0:
        raise ConfigError("need n_devices >= 1 and alpha > 0", key="n_devices")
    rng = np.random.default_rng(seed)
    by_domain: dict[str, list[Utterance]] = {}
    for u in utterances:
        by_domain.setdefault(u.domain or "(none)", []).append(u)
    devices: list[list[Utterance]] = [[] for _ in range(n_devices)]
    for domain in sorted(by_domain):
        items = by_domain[domain]
        order = rng.permutation(len(items))
        shares = rng.dirichlet([alpha] * n_devices)
        cuts = (np.cumsum(shares)[:-1] * len(items)).astype(int)
        for device, part in enumerate(np.split(order, cuts)):
            devices[device].extend(items[i] for i in part)
    return [d for d in devices if d]
