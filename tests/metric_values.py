"""Reading Kartabl's Prometheus metrics by value, for the tests of every counter.

Counters are process-wide and only ever grow, so a test reads a sample before and after a
known sequence and asserts the difference (:class:`Deltas`). Values come from
prometheus_client's default registry, the one ``/metrics`` serves
(:func:`from_text` reads the served text the same way)."""

from __future__ import annotations

from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

Key = tuple[str, tuple[tuple[str, str], ...]]


def value(name: str, **labels: str) -> float:
    """The current value of sample ``name`` with ``labels`` (0 before it was ever set)."""
    return REGISTRY.get_sample_value(name, labels) or 0.0


def from_text(text: str, name: str, **labels: str) -> float:
    """The value of sample ``name`` with exactly ``labels`` in Prometheus text ``text``."""
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return float(sample.value)
    return 0.0


class Deltas:
    """``d = Deltas(("kartabl_replies_total", {"state": "sent"}), ...)`` before a sequence,
    ``d.now()`` after it: ``{(name, labels): increase}``, every watched sample included."""

    def __init__(self, *watched: tuple[str, dict[str, str]]) -> None:
        self._start = {self._key(n, lb): value(n, **lb) for n, lb in watched}

    @staticmethod
    def _key(name: str, labels: dict[str, str]) -> Key:
        return name, tuple(sorted(labels.items()))

    def now(self) -> dict[str, float]:
        """Increase per watched sample, keyed ``name`` or ``name{k=v}``."""
        out: dict[str, float] = {}
        for (name, labels), start in self._start.items():
            key = name + ("{" + ",".join(f"{k}={v}" for k, v in labels) + "}" if labels else "")
            out[key] = value(name, **dict(labels)) - start
        return out
