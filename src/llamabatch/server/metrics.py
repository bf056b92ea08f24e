"""Prometheus metrics for the server, in the text exposition format.

A few counters, gauges and histograms with labels, safe to update from the
scheduler threads and the event loop at once. Written out by ``GET /metrics``.
"""
from __future__ import annotations

import bisect
import math
import threading
from typing import Callable, Dict, Iterable, Tuple

Labels = Tuple[Tuple[str, str], ...]

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
COUNT_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)


def _labels(labels: Dict[str, str]) -> Labels:
    return tuple(sorted((k, str(v)) for k, v in labels.items()))


def _format_labels(labels: Labels, extra: Tuple[Tuple[str, str], ...] = ()) -> str:
    items = labels + extra
    if not items:
        return ""
    escaped = (v.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"') for _, v in items)
    return "{" + ",".join(f'{k}="{v}"' for (k, _), v in zip(items, escaped)) + "}"


def _number(x: float) -> str:
    if math.isinf(x):
        return "+Inf" if x > 0 else "-Inf"
    return repr(float(x)) if not float(x).is_integer() else str(int(x))


class _Metric:
    kind = ""

    def __init__(self, name: str, help_text: str, lock: threading.Lock) -> None:
        self.name = name
        self.help = help_text
        self._lock = lock

    def header(self) -> list[str]:
        return [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} {self.kind}"]

    def lines(self) -> list[str]:
        raise NotImplementedError


class Counter(_Metric):
    kind = "counter"

    def __init__(self, name: str, help_text: str, lock: threading.Lock) -> None:
        super().__init__(name, help_text, lock)
        self._values: Dict[Labels, float] = {}

    def inc(self, amount: float = 1.0, **labels: str) -> None:
        key = _labels(labels)
        with self._lock:
            self._values[key] = self._values.get(key, 0.0) + amount

    def value(self, **labels: str) -> float:
        with self._lock:
            return self._values.get(_labels(labels), 0.0)

    def lines(self) -> list[str]:
        return self.header() + [f"{self.name}{_format_labels(k)} {_number(v)}" for k, v in sorted(self._values.items())]


class Gauge(_Metric):
    """A value read when the metrics are written (queue lengths)."""

    kind = "gauge"

    def __init__(self, name: str, help_text: str, lock: threading.Lock) -> None:
        super().__init__(name, help_text, lock)
        self._readers: Dict[Labels, Callable[[], float]] = {}

    def read_from(self, reader: Callable[[], float], **labels: str) -> None:
        with self._lock:
            self._readers[_labels(labels)] = reader

    def lines(self) -> list[str]:
        return self.header() + [f"{self.name}{_format_labels(k)} {_number(r())}" for k, r in sorted(self._readers.items())]


class Histogram(_Metric):
    kind = "histogram"

    def __init__(self, name: str, help_text: str, lock: threading.Lock, buckets: Iterable[float]) -> None:
        super().__init__(name, help_text, lock)
        self.buckets = tuple(buckets)
        self._counts: Dict[Labels, list[int]] = {}
        self._sums: Dict[Labels, float] = {}

    def observe(self, value: float, **labels: str) -> None:
        key = _labels(labels)
        with self._lock:
            counts = self._counts.setdefault(key, [0] * (len(self.buckets) + 1))
            counts[bisect.bisect_left(self.buckets, value)] += 1
            self._sums[key] = self._sums.get(key, 0.0) + value

    def count(self, **labels: str) -> int:
        with self._lock:
            return sum(self._counts.get(_labels(labels), []))

    def sum(self, **labels: str) -> float:
        with self._lock:
            return self._sums.get(_labels(labels), 0.0)

    def lines(self) -> list[str]:
        out = self.header()
        for key, counts in sorted(self._counts.items()):
            running = 0
            for bound, n in zip(self.buckets + (math.inf,), counts):
                running += n
                out.append(f"{self.name}_bucket{_format_labels(key, (('le', _number(bound)),))} {running}")
            out.append(f"{self.name}_sum{_format_labels(key)} {_number(self._sums[key])}")
            out.append(f"{self.name}_count{_format_labels(key)} {running}")
        return out


class Metrics:
    """Every metric the server exports."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        lock = self._lock
        self.requests = Counter("llamabatch_requests_total", "HTTP requests answered, by endpoint and status.", lock)
        self.queue_length = Gauge("llamabatch_queue_length",
                                  "Inputs (embeddings) or requests (generation) waiting for the model.", lock)
        self.running = Gauge("llamabatch_running_sequences", "Sequences in the running generation batch.", lock)
        self.tokens = Counter("llamabatch_tokens_total",
                              "Tokens processed, by kind: embedding (input), prompt, prompt_cached (of the "
                              "prompt tokens, those reused from a slot's memory, not decoded again) and completion.",
                              lock)
        self.decodes = Counter("llamabatch_decodes_total", "Decodes (llama_decode calls), by model.", lock)
        self.sequences_per_decode = Histogram("llamabatch_sequences_per_decode",
                                              "Sequences packed into each decode, by model.", lock, COUNT_BUCKETS)
        self.latency = Histogram("llamabatch_request_duration_seconds",
                                 "Time from a request's arrival to its last byte, by endpoint.", lock,
                                 LATENCY_BUCKETS)
        self.queue_time = Histogram("llamabatch_queue_seconds",
                                    "Time a request waited before its first decode, by endpoint.", lock,
                                    LATENCY_BUCKETS)
        self.first_token = Histogram("llamabatch_time_to_first_token_seconds",
                                     "Time from a generation request's arrival to its first token.", lock,
                                     LATENCY_BUCKETS)
        self._all = [self.requests, self.queue_length, self.running, self.tokens, self.decodes,
                     self.sequences_per_decode, self.latency, self.queue_time, self.first_token]

    def render(self) -> str:
        # Gauges call back into the schedulers, which take their own locks:
        # read them before taking ours.
        gauges = [m.lines() for m in self._all if isinstance(m, Gauge)]
        with self._lock:
            others = [m.lines() for m in self._all if not isinstance(m, Gauge)]
        return "\n".join(line for block in gauges + others for line in block) + "\n"
