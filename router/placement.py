"""Assignment for a batch of routed messages: who handles each conversation, with the
database read once per batch instead of once per message.

The rules, applied in message order: a still-available assignee keeps the conversation;
otherwise the team (kept, or chosen by :func:`router.assignment.choose_team`) hands it to
the customer's previous assignee if under capacity, else the least-loaded available member
under capacity (lowest id on a tie), else it waits in the team's queue (or, with no team,
the coordinator's triage queue). Load is the number of OPEN conversations assigned.

Race safety, per batch: handing out "the last free slot" is a read-then-write, so every
team the batch may need is locked (id order), then all their available members (id order),
and only then are loads counted, by one GROUP BY that sees every assignment committed
before the locks were granted. Loads then grow in memory as the batch assigns. Lock order
across the router is customers, teams, persons, each sorted by id, so batches cannot
deadlock one another.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from config.routing import RoutingConfig
from kartabl.models import (
    Conversation,
    ConversationStatus,
    Customer,
    Message,
    Person,
    Team,
    TeamMember,
)
from router.assignment import choose_team

log = logging.getLogger(__name__)

# (event kind, conversation, fields): recorded by the caller once conversations have ids.
Announce = Callable[[str, Conversation, dict[str, Any]], None]


class Placement:
    """Places the conversations of one batch. Build it with every (conversation, message)
    pair to be placed, in message order, then call :meth:`place` for each pair in order."""

    def __init__(self, session: Session, routing: RoutingConfig,
                 work: Sequence[tuple[Conversation, Message]], customers: dict[int, Customer],
                 new_customers: set[int]) -> None:
        self.routing = routing
        self.customers = customers
        self.rules: dict[int, tuple[str | None, str | None]] = {}
        self.people: dict[int, Person] = {}  # available, active: may keep or take work
        self.members: set[tuple[int, int]] = set()  # (team id, person id)
        self._load_assignees(session, {c.assignee_id for c, _ in work if c.assignee_id})
        self.names = {self._rule(c, m)[0] for c, m in work if self._needs_rule(c)} - {None}
        self.ids = {c.team_id for c, _ in work if c.team_id is not None and not self._kept(c)}
        self.team_ids: dict[str, int] = {}
        self.team_members: dict[int, list[int]] = {}
        self.loads: dict[int, int] = {}
        self.previous: dict[tuple[int, int], int] = {}
        self.assigned: dict[int, list[int]] = {}  # customer id -> assignees, in this batch
        old = {c.customer_id for c, _ in work} - new_customers
        if (self.names or self.ids) and old:
            self._load_previous(session, old)

    def lock(self, session: Session) -> None:
        """Lock the teams the batch may need and their members, and count loads. Call it as
        late as possible: the locks are held until the commit, and serialise batches."""
        if self.names or self.ids:
            self._lock_teams(session, self.names, self.ids)

    # -- loading ---------------------------------------------------------------------------

    def _load_assignees(self, session: Session, pids: set[int | None]) -> None:
        if not pids:
            return
        for person, team_id in session.execute(
            select(Person, TeamMember.team_id)
            .outerjoin(TeamMember, TeamMember.person_id == Person.id)
            .where(Person.id.in_(pids), Person.available.is_(True), Person.active.is_(True))
        ):
            self.people[person.id] = person
            if team_id is not None:
                self.members.add((team_id, person.id))

    def _lock_teams(self, session: Session, names: set[str | None], ids: set[int]) -> None:
        full = self._full_teams(session, names, ids)
        teams = session.execute(
            select(Team.id, Team.name)
            .where(or_(Team.name.in_(names), Team.id.in_(ids)), Team.id.not_in(full))
            # NO KEY UPDATE: routers still exclude one another, but a batch that only files
            # a conversation under the team (the foreign key's KEY SHARE) is not blocked.
            .order_by(Team.id).with_for_update(key_share=True)
        ).all()
        self.team_ids.update({name: tid for tid, name in teams})
        tids = [tid for tid, _ in teams]
        if not tids:
            return
        self.team_members.update({tid: [] for tid in tids})
        for person, team_id in session.execute(
            select(Person, TeamMember.team_id).join(TeamMember, TeamMember.person_id == Person.id)
            .where(TeamMember.team_id.in_(tids), Person.available.is_(True),
                   Person.active.is_(True))
            .order_by(Person.id).with_for_update(of=Person, key_share=True)
        ):
            self.people[person.id] = person
            self.members.add((team_id, person.id))
            self.team_members[team_id].append(person.id)
        pids = sorted({p for t in tids for p in self.team_members[t]})
        if not pids:
            return
        # A new statement, so it sees what was committed while we waited for the locks.
        self.loads.update(dict.fromkeys(pids, 0))
        for pid, load in session.execute(
            select(Conversation.assignee_id, func.count(Conversation.id))
            .where(Conversation.assignee_id.in_(pids),
                   Conversation.status == ConversationStatus.OPEN)
            .group_by(Conversation.assignee_id)
        ):
            if pid is not None:
                self.loads[pid] = load

    def _full_teams(self, session: Session, names: set[str | None], ids: set[int]) -> set[int]:
        """The teams of the batch with no free slot, read without locks: nothing can be
        assigned in them, so they are not locked (a conversation waiting in a full team's
        queue no longer serialises every batch on that team). What the read says is "full"
        stays decided; a team it says has room is locked and counted again, as before. The
        read sees every commit up to now, as the count under the lock would."""
        load = (
            select(func.count(Conversation.id))
            .where(Conversation.assignee_id == Person.id,
                   Conversation.status == ConversationStatus.OPEN)
            .scalar_subquery()
        )
        rows = session.execute(
            select(Team.id, Team.name, Person, load)
            .outerjoin(TeamMember, TeamMember.team_id == Team.id)
            .outerjoin(Person, (Person.id == TeamMember.person_id)
                       & Person.available.is_(True) & Person.active.is_(True))
            .where(or_(Team.name.in_(names), Team.id.in_(ids)))
            .order_by(Team.id, Person.id)
        ).all()
        teams: dict[int, list[tuple[Person, int]]] = {}
        for tid, name, person, n in rows:
            self.team_ids[name] = tid
            members = teams.setdefault(tid, [])
            if person is not None:
                members.append((person, n))
        full = {tid for tid, members in teams.items()
                if all(n >= p.capacity for p, n in members)}
        for tid in full:  # _pick then answers as the locked count would
            self.team_members[tid] = [p.id for p, _ in teams[tid]]
            for person, n in teams[tid]:
                self.people.setdefault(person.id, person)
                self.members.add((tid, person.id))
                self.loads[person.id] = n
        return full

    def _load_previous(self, session: Session, customer_ids: set[int]) -> None:
        """Per (customer, team): the assignee of the customer's latest conversation whose
        assignee is in the team. History, read before any lock, as the single route did."""
        member = TeamMember.person_id == Conversation.assignee_id
        rn = func.row_number().over(
            partition_by=(Conversation.customer_id, TeamMember.team_id),
            order_by=(Conversation.opened_at.desc(), Conversation.id.desc()),
        )
        ranked = (
            select(Conversation.customer_id, TeamMember.team_id, Conversation.assignee_id,
                   rn.label("rn"))
            .join(TeamMember, member)
            .where(Conversation.customer_id.in_(sorted(customer_ids)))
            .subquery()
        )
        for cid, tid, pid in session.execute(
            select(ranked.c.customer_id, ranked.c.team_id, ranked.c.assignee_id)
            .where(ranked.c.rn == 1)
        ):
            self.previous[(cid, tid)] = pid

    # -- deciding --------------------------------------------------------------------------

    def _kept(self, conv: Conversation) -> bool:
        pid = conv.assignee_id
        return pid is not None and pid in self.people and (
            conv.team_id is None or (conv.team_id, pid) in self.members)

    def _needs_rule(self, conv: Conversation) -> bool:
        return conv.team_id is None and not self._kept(conv)

    def _rule(self, conv: Conversation, message: Message) -> tuple[str | None, str | None]:
        if message.id not in self.rules:
            customer = self.customers.get(conv.customer_id)
            team, rule = choose_team(
                self.routing, conv.channel, message.subject, message.text,
                (customer.tags if customer is not None else None) or [])
            # No rule chose: the team of the inbox it came in by (a mailbox's `team`).
            default = (message.meta or {}).get("default_team")
            if team is None and default:
                team, rule = str(default), "inbox default"
            self.rules[message.id] = (team, rule)
        return self.rules[message.id]

    def _previous(self, customer_id: int, team_id: int) -> int | None:
        for pid in reversed(self.assigned.get(customer_id, [])):
            if (team_id, pid) in self.members:
                return pid
        return self.previous.get((customer_id, team_id))

    def _pick(self, conv: Conversation, team_id: int) -> tuple[int | None, str]:
        members = self.team_members.get(team_id, [])
        if not members:
            return None, "no available member"
        slots = sorted((self.loads[p], p) for p in members
                       if self.loads[p] < self.people[p].capacity)
        previous = self._previous(conv.customer_id, team_id)
        if previous is not None and any(p == previous for _, p in slots):
            return previous, "previous assignee"
        if slots:
            return slots[0][1], "least loaded"
        return None, "team at capacity"

    def place(self, conv: Conversation, message: Message, is_new: bool,
              announce: Announce) -> None:
        """Place ``conv`` for ``message`` by the rules above."""
        if self._kept(conv):
            return
        team_id, rule, reason = conv.team_id, None, "team kept"
        if team_id is None:
            team_name, rule = self._rule(conv, message)
            reason = "no rule matched"
            if team_name is not None:
                team_id = self.team_ids.get(team_name)
                if team_id is None:
                    log.warning("rule %r names team %r, which has no row (run `kartabl "
                                "sync-config`); conversation left in triage", rule, team_name)
                    reason = f"team {team_name!r} does not exist"
        pid: int | None = None
        if team_id is not None:
            pid, reason = self._pick(conv, team_id)
        before = (conv.team_id, conv.assignee_id)
        conv.team_id, conv.assignee_id = team_id, pid
        if pid is not None:
            self.loads[pid] += 1
            self.assigned.setdefault(conv.customer_id, []).append(pid)
        if is_new or before != (team_id, pid):
            kind = "conversation.assigned" if pid is not None else "conversation.triaged"
            announce(kind, conv, {"team_id": team_id, "assignee_id": pid, "rule": rule,
                                  "reason": reason})
