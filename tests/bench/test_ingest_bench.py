"""``python -m bench.ingest`` at a small size, end to end on PostgreSQL and Redis with real
dramatiq workers (skipped with a reason when they are not reachable, required in CI): the
traffic goes through the channels' own parsers and stores, some conversations wait in
triage, references and bounces find our earlier replies, the workers log, and the last line
keeps its shape. And, without servers, that the generated traffic is what the providers
send: every input parses through the channel's own entry point into the kind it claims."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path
from urllib.parse import parse_qsl

import pytest
import redis
from pydantic import SecretStr

from bench.corpus import people
from bench.ingest_traffic import History, traffic
from channels.email import parse
from channels.sms.inbound import to_message as sms_message
from channels.telegram.updates import to_message as update_message
from config.sms import SmsConfig
from config.telegram import BotConfig
from tests.conftest import PG_ADMIN, REDIS_URL

ROOT = Path(__file__).resolve().parents[2]
LINE = re.compile(r"^ingest_msgs_per_s=([\d.]+) noop_msgs_per_s=([\d.]+) ratio=([\d.]+) "
                  r"p99_ms=([\d.]+)$")


def _number(key: str, text: str) -> int:
    match = re.search(rf"\b{key}=(\d+)", text)
    assert match, f"{key} missing from:\n{text[-3000:]}"
    return int(match[1])


@pytest.mark.fleet
@pytest.mark.timeout(300)  # about a minute on an idle 2-core machine
def test_the_bench_drives_the_real_paths_and_keeps_its_line(
    pg_url: str, redis_client: redis.Redis
) -> None:
    # Given PostgreSQL and Redis (the fixtures skip, or fail in CI, when they are missing)
    env = {**os.environ, "KARTABL_BENCH_PG": PG_ADMIN, "KARTABL_BENCH_REDIS": REDIS_URL}
    # When the bench runs 400 messages from 120 customers on one worker process
    run = subprocess.run(
        [sys.executable, "-m", "bench.ingest", "--messages", "400", "--customers", "120",
         "--processes", "1", "--threads", "4", "--latency-seconds", "1"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=240,
    )
    # Then it succeeds, and its last line (the last of `make bench`) keeps its shape
    assert run.returncode == 0, run.stderr[-3000:]
    match = LINE.match(run.stdout.strip().splitlines()[-1])
    assert match, run.stdout
    ingest, noop, ratio, p99 = (float(match[i]) for i in range(1, 5))
    assert ingest > 0 and noop > 0 and p99 > 0
    assert ratio == pytest.approx(ingest / noop, abs=0.002)
    # and the run took the paths production takes: some conversations wait for a free
    # slot, references and bounces found our earlier replies, the workers logged at INFO
    err = run.stderr
    assert "one message per task" in err
    assert _number("waiting_in_triage", err) > 0 and _number("assigned", err) > 0
    assert _number("by_reference", err) > 0 and _number("reopened", err) > 0
    assert _number("bounced_replies", err) > 0
    assert _number("log_lines", err) > 400


def test_the_traffic_parses_through_the_channels_own_entry_points() -> None:
    persons = people(300)
    # Customers we answered before: their references name our replies
    history = {p.idx: History("<r.1.x.y@kartabl.example>", 501, 502) for p in persons[:100]}
    raws = traffic(persons, 1500, phase=1, history=history, seed=3)
    bots = {kind: BotConfig(name=f"b{kind}", kind=kind, token=SecretStr("1:x"),
                            webhook_secret=SecretStr("s")) for kind in ("telegram", "bale")}
    sms = SmsConfig(line="10004000", api_key=SecretStr("k"))
    kinds: Counter[str] = Counter()
    referenced = 0
    for raw in raws:
        if raw.channel == "email":
            msg = parse(raw.body, our_addresses=["support@kartabl.example"])
        elif raw.channel == "sms":
            msg = sms_message(dict(parse_qsl(raw.body.decode())), sms)
        else:
            got = update_message(json.loads(raw.body), bots[raw.channel])
            assert got is not None
            msg = got
        # The parser itself tells the kind: automatic mail is recognised, not declared
        assert msg.kind == raw.kind, raw.body[:300]
        assert msg.channel == raw.channel
        kinds[raw.kind] += 1
        if raw.reference and raw.kind != "bounce":
            assert msg.in_reply_to, raw.body[:300]
            referenced += 1
    # Every channel, automatic mail of both kinds, and a share of references
    assert {r.channel for r in raws} == {"email", "sms", "telegram", "bale"}
    assert kinds["auto_reply"] > 5 and kinds["bounce"] > 3
    assert 0.1 < referenced / len(raws) < 0.3
    assert len({r.body for r in raws}) == len(raws)  # every input is a distinct message
