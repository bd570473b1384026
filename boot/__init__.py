"""The composition layer: what each kind of process installs when it starts.

Every long-running process (the ``Procfile`` lines and the all-in-one ``kartabl run``) boots
through :func:`boot.kinds.start` with the name of its kind. A kind is the list of roles it
plays (serve the console, run the dramatiq actors, sweep, poll a channel); each role declares
the parts it needs (database, broker, senders) next to its name in :mod:`boot.kinds`, and the
kind installs the union of its roles' needs. Nobody lists by hand what a process installs,
so "the scheduler forgot the senders" cannot be written again: the scheduler plays the
``sweep`` role, the sweep reconciles and polls deliveries, so it needs the senders.
"""

from boot.kinds import KINDS, Part, ProcessKind, Role, Runtime, start

__all__ = ["KINDS", "Part", "ProcessKind", "Role", "Runtime", "start"]
