"""Federated training: only model arrays leave a device, FedAvg of one device is local
training, the partition is non-IID, and a small federation learns HWU64 intents."""

from __future__ import annotations

import dataclasses
import random
from pathlib import Path

import numpy as np
import pytest

from voxloop.data import load_corpus
from voxloop.errors import ConfigError
from voxloop.privacy.federated import (
    Device,
    FedAvgConfig,
    HashedFeatures,
    SoftmaxModel,
    centralised_training,
    federated_training,
    partition_by_domain,
)

FEATURES = HashedFeatures(dim=1 << 12)


@pytest.fixture(scope="module")
def hwu(datasets: Path) -> tuple[list, list, list[str]]:
    corpus = load_corpus(f"hwu64:{datasets / 'hwu64'}")
    train = list(corpus.split("train"))
    random.Random(0).shuffle(train)
    test = list(corpus.split("test"))[:400]
    intents = sorted({u.intent for u in train})
    return train[:1500], test, intents


def test_a_device_sends_only_model_arrays(hwu: tuple) -> None:
    train, _, intents = hwu
    device = Device(train[:30], intents, FEATURES)
    model = SoftmaxModel.zeros(FEATURES.n_features, len(intents))
    update = device.fit(model, FedAvgConfig(local_epochs=1))
    values = [getattr(update, f.name) for f in dataclasses.fields(update)]
    assert all(isinstance(v, np.ndarray | int) for v in values)
    assert update.weights.shape == model.weights.shape and update.num_examples == 30
    assert update.nbytes == FEATURES.n_features * len(intents) * 4 + len(intents) * 4 + 8


def test_fedavg_of_one_device_is_its_local_training(hwu: tuple) -> None:
    train, test, intents = hwu
    part = train[:200]
    device = Device(part, intents, FEATURES, seed=3)
    config = FedAvgConfig(rounds=1, devices_per_round=1, local_epochs=3)
    fed, _ = federated_training([device], FEATURES.n_features, len(intents), config)
    x = FEATURES.transform([u.text for u in part])
    y = np.array([intents.index(u.intent) for u in part])
    central, _ = centralised_training(x, y, len(intents), epochs=1, seed=3)
    local = SoftmaxModel.zeros(FEATURES.n_features, len(intents))
    local.sgd(x, y, epochs=3, lr=config.lr, batch_size=config.batch_size,
              rng=np.random.default_rng(3))  # fmt: skip
    np.testing.assert_allclose(fed.weights, local.weights, atol=1e-6)
    assert not np.allclose(central.weights, local.weights)  # 1 epoch differs from 3


def test_the_partition_is_non_iid_and_complete(hwu: tuple) -> None:
    train, _, _ = hwu
    parts = partition_by_domain(train, 40, alpha=0.05, seed=0)
    assert sorted(id(u) for p in parts for u in p) == sorted(id(u) for u in train)
    top = [max(np.unique([u.domain for u in p], return_counts=True)[1]) / len(p) for p in parts]
    assert np.mean(top) > 0.6


def test_clipping_bounds_each_update(hwu: tuple) -> None:
    train, _, intents = hwu
    model = SoftmaxModel.zeros(FEATURES.n_features, len(intents))
    update = Device(train[:100], intents, FEATURES).fit(model, FedAvgConfig(clip=0.5))
    norm = np.sqrt(np.sum(update.weights**2) + np.sum(update.bias**2))
    assert norm == pytest.approx(0.5, rel=1e-4)


def test_a_small_federation_learns_close_to_centralised(hwu: tuple) -> None:
    train, test, intents = hwu
    x_test = FEATURES.transform([u.text for u in test])
    y_test = np.array([intents.index(u.intent) if u.intent in intents else -1 for u in test])
    devices = [Device(p, intents, FEATURES, seed=i)
               for i, p in enumerate(partition_by_domain(train, 20, alpha=0.3))]  # fmt: skip
    config = FedAvgConfig(rounds=15, devices_per_round=8, lr=0.5, server_momentum=0.9)
    _, log = federated_training(devices, FEATURES.n_features, len(intents), config,
                                test=(x_test, y_test))  # fmt: skip
    x = FEATURES.transform([u.text for u in train])
    y = np.array([intents.index(u.intent) for u in train])
    _, central = centralised_training(x, y, len(intents), epochs=3, test=(x_test, y_test))
    assert log.accuracy[-1] > 0.5 and log.accuracy[-1] > log.accuracy[0]
    assert log.accuracy[-1] > central[-1] - 0.12
    assert log.bytes_up[0] == 8 * (FEATURES.n_features * len(intents) * 4 + len(intents) * 4 + 8)


def test_bad_config_names_the_key() -> None:
    with pytest.raises(ConfigError) as e:
        FedAvgConfig(noise_multiplier=1.0)
    assert e.value.key == "noise_multiplier"
