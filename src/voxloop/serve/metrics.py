"""Prometheus metrics in the text exposition format, hand-written (no dependency).

Counters and histograms are updated from the event loop and the log thread; a lock keeps
each update and the rendering consistent.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Sequence

__all__ = ["LATENCY_BUCKETS", "Counter", "Histogram", "Metrics"]

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)

Labels = tuple[tuple[str, str], ...]


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(labels: Labels, extra: tuple[str, str] | None = None) -> str:
    pairs = list(labels) + ([extra] if extra else [])
    if not pairs:
        return ""
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in pairs) + "}"


def _number(x: float) -> str:
    if math.isinf(x):
        return "+Inf" if x > 0 else "-Inf"
    return repr(float(x)) if not float(x).is_integer() else str(int(x))


class Counter:
    """A monotonically increasing count per label set."""

    def __init__(self, name: str, help: str, lock: threading.Lock) -> None:
        self.name, self.help, self._lock = name, help, lock
        self._values: dict[Labels, float] = {}

    def inc(self, amount: float = 1.0, **labels: str) -> None:
        key = tuple(sorted(labels.items()))
        with self._lock:
            self._values[key] = self._values.get(key, 0.0) + amount

    def value(self, **labels: str) -> float:
        with self._lock:
            return self._values.get(tuple(sorted(labels.items())), 0.0)

    def render(self) -> list[str]:
        lines = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} counter"]
        for key, v in sorted(self._values.items()):
            lines.append(f"{self.name}{_labels(key)} {_number(v)}")
        return lines


class Histogram:
    """Counts of observations per bucket (cumulative on output), their sum and count."""

    def __init__(
        self, name: str, help: str, buckets: Sequence[float], lock: threading.Lock
    ) -> None:
        self.name, self.help, self._lock = name, help, lock
        self.buckets = tuple(buckets)
        self._counts: dict[Labels, list[int]] = {}
        self._sums: dict[Labels, float] = {}

    def observe(self, value: float, **labels: str) -> None:
        key = tuple(sorted(labels.items()))
        with self._lock:
            counts = self._counts.setdefault(key, [0] * (len(self.buckets) + 1))
            i = next((i for i, b in enumerate(self.buckets) if value <= b), len(self.buckets))
            counts[i] += 1
            self._sums[key] = self._sums.get(key, 0.0) + value

    def count(self, **labels: str) -> int:
        with self._lock:
            return sum(self._counts.get(tuple(sorted(labels.items())), []))

    def render(self) -> list[str]:
        lines = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} histogram"]
        for key in sorted(self._counts):
            running = 0
            for bound, n in zip((*self.buckets, math.inf), self._counts[key], strict=True):
                running += n
                le = ("le", _number(bound))
                lines.append(f"{self.name}_bucket{_labels(key, le)} {running}")
            lines.append(f"{self.name}_sum{_labels(key)} {_number(self._sums[key])}")
            lines.append(f"{self.name}_count{_labels(key)} {running}")
        return lines


class Metrics:
    """The server's metrics; gauges are read from callables when rendered."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests = Counter(
            "voxloop_requests_total", "Requests answered, by route and status.", self._lock
        )
        self.latency = Histogram(
            "voxloop_request_seconds",
            "Request latency in seconds, by route.",
            LATENCY_BUCKETS,
            self._lock,
        )
        self.batch_size = Histogram(
            "voxloop_batch_size", "Texts per model call.", BATCH_BUCKETS, self._lock
        )
        self.parse_seconds = Histogram(
            "voxloop_batch_seconds", "Model time per batch in seconds.", LATENCY_BUCKETS, self._lock
        )
        self.rejected = Counter("voxloop_rejected_total", "Texts refused, by reason.", self._lock)
        self.turns = Counter("voxloop_turns_total", "Turns appended to the log.", self._lock)
        self.feedback = Counter(
            "voxloop_feedback_total", "Feedback events appended to the log.", self._lock
        )
        self.policy_updates = Counter(
            "voxloop_policy_updates_total", "Rewards a response policy learned from.", self._lock
        )
        self._gauges: list[tuple[str, str, Callable[[], list[tuple[Labels, float]]]]] = []

    def gauge(self, name: str, help: str, read: Callable[[], list[tuple[Labels, float]]]) -> None:
        """Register a gauge whose samples are read at render time."""
        self._gauges.append((name, help, read))

    def render(self) -> str:
        """The whole exposition, ending with a newline."""
        samples = [(name, help, read()) for name, help, read in self._gauges]
        with self._lock:
            lines: list[str] = []
            for metric in (
                self.requests,
                self.latency,
                self.batch_size,
                self.parse_seconds,
                self.rejected,
                self.turns,
                self.feedback,
                self.policy_updates,
            ):
                lines += metric.render()
        for name, help, values in samples:
            lines += [f"# HELP {name} {help}", f"# TYPE {name} gauge"]
            lines += [f"{name}{_labels(key)} {_number(v)}" for key, v in values]
        return "\n".join(lines) + "\n"
