"""Every ``Procfile`` line, started as its own OS process, boots as its kind and installs
what its roles need: the bug class "process X forgot to install Y" (the scheduler without
senders) shows here and in no in-process test."""

from __future__ import annotations

import json

import pytest

from bench.fleet import procfile
from boot import KINDS, Part
from kartabl.models import Channel
from tests.fleet.conftest import Deployed

pytestmark = [pytest.mark.fleet, pytest.mark.xdist_group("fleet")]

# What a process of each Procfile line must have installed for this channels file (SMTP
# mailbox, a Telegram bot, Kavenegar); every other channel (Bale has no bot, Rubika and the
# others nothing configured) is served by the sandbox.
REAL_SENDERS = {**{ch.value: "SandboxSender" for ch in Channel},
                "email": "SmtpSender", "sms": "KavenegarSender", "telegram": "TelegramSender"}


def _booted(log: str) -> dict[str, object]:
    for line in log.splitlines():
        if line.startswith("{") and '"booted ' in line:
            record: dict[str, object] = json.loads(line)
            return record
    raise AssertionError(f"no 'booted' line in:\n{log[-3000:]}")


def test_every_procfile_line_is_a_declared_kind() -> None:
    # Each Procfile process type is named after the kind it boots as.
    assert set(procfile()) <= set(KINDS), set(procfile()) - set(KINDS)


def test_each_process_boots_with_what_its_roles_need(deployed: Deployed) -> None:
    for line, proc in deployed.procs.items():
        record = _booted(proc.log())
        data = record["data"]
        assert isinstance(data, dict)
        # Then it booted as the kind of its Procfile line, with that kind's parts
        assert data["kind"] == line, (line, record)
        needs = set().union(*(r.needs for r in KINDS[line].roles))
        assert set(data["parts"]) == {p.value for p in needs}, (line, data)
        if Part.SENDERS in needs:
            # And a process that sends, reconciles or polls deliveries has the real sender of
            # every configured channel (the scheduler had none before boot/ existed)
            event = str(record["event"])
            assert sorted(data["senders"]) == sorted(REAL_SENDERS), (line, data)
            for channel, cls in REAL_SENDERS.items():
                assert f"{channel}=<{cls}" in event, (line, channel, event)
        else:
            assert data["senders"] == [], (line, data)


def test_the_scheduler_and_worker_are_the_only_sending_kinds_of_the_procfile() -> None:
    sending = {name for name in procfile() if Part.SENDERS in KINDS[name].parts}
    assert sending == {"worker", "scheduler"}


def test_a_sending_process_closes_its_senders_when_it_stops(deployed: Deployed) -> None:
    # Given one more worker and one more scheduler of the fleet, booted with real senders
    for line in ("worker", "scheduler"):
        proc = deployed.fleet.start(line)
        deployed.fleet.wait_log(proc, '"booted ', timeout_s=60)
        # When the process manager stops it (SIGTERM)
        deployed.fleet.stop(proc)
        # Then it closed every sender it had installed (the Kavenegar client had never been
        # closed before the composition did it)
        closed = f"senders closed: {', '.join(sorted(REAL_SENDERS))}"
        assert closed in proc.log(), (line, proc.log()[-3000:])
