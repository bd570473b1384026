"""The README's metrics table lists every metric Kartabl defines, each with a test file
that exists."""

from __future__ import annotations

import re
from pathlib import Path

from prometheus_client import Counter, Gauge, Histogram, Summary

from kartabl import metrics

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def defined() -> list[str]:
    kinds = (Counter, Gauge, Histogram, Summary)
    # describe() names a counter without its _total suffix: the README uses the full name.
    names = []
    for obj in vars(metrics).values():
        if isinstance(obj, kinds):
            name = obj._name  # prometheus_client keeps the declared name here
            names.append(name + "_total" if isinstance(obj, Counter) else name)
    return names


def test_every_metric_is_in_the_readme_table_with_a_test() -> None:
    names = defined()
    assert "kartabl_messages_ingested_total" in names and len(names) >= 6
    rows = {m[1]: m[2] for m in re.finditer(r"^\| `([a-z_]+)(?:\{[^`]*\})?` \|.*\| (.+) \|$",
                                               README, re.M)}
    missing = [n for n in names if n not in rows]
    assert not missing, f"metrics missing from the README's table: {missing}"
    for name in names:
        files = re.findall(r"`(tests/[^`]+\.py)`", rows[name])
        assert files and all((ROOT / f).is_file() for f in files), (name, rows[name])
