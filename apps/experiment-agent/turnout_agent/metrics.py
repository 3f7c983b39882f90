"""Prometheus text exposition for the experiments' metrics: counters, gauges and histograms."""

from __future__ import annotations

import bisect
import threading


def _escape(value: object) -> str:
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(labels: dict) -> str:
    return ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items())


class Histogram:
    """Cumulative buckets of observed values (seconds), as Prometheus histograms are."""

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.total = 0.0
        self._lock = threading.Lock()

    def observe(self, value: float) -> None:
        with self._lock:
            self.counts[bisect.bisect_left(self.bounds, value)] += 1
            self.total += value

    def snapshot(self) -> tuple[list[int], float]:
        with self._lock:
            return list(self.counts), self.total


class Families:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def add(self, name: str, kind: str, text: str, samples: list[tuple[dict, float]]) -> None:
        self.lines += [f"# HELP {name} {text}", f"# TYPE {name} {kind}"]
        for labels, value in samples:
            rendered = _labels(labels)
            self.lines.append(f"{name}{{{rendered}}} {value:g}" if rendered else f"{name} {value:g}")

    def histogram(self, name: str, text: str, labels: dict, histogram: Histogram | None = None, *, series=None) -> None:
        """One histogram family; `series`: [(labels, bounds, counts, total)] for several label sets."""
        self.lines += [f"# HELP {name} {text}", f"# TYPE {name} histogram"]
        if histogram is not None:
            counts, total = histogram.snapshot()
            series = [(labels, histogram.bounds, counts, total)]
        for extra, bounds, counts, total in series or []:
            running = 0
            for bound, count in zip((*bounds, float("inf")), counts, strict=True):
                running += count
                le = "+Inf" if bound == float("inf") else f"{bound:g}"
                self.lines.append(f"{name}_bucket{{{_labels({**extra, 'le': le})}}} {running}")
            self.lines.append(f"{name}_sum{{{_labels(extra)}}} {total:g}")
            self.lines.append(f"{name}_count{{{_labels(extra)}}} {running}")

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"
