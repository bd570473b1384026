"""The only place that knows the queue.

- :mod:`workers.broker`      builds the dramatiq broker from settings, installs the enqueuer;
                             the broker's ping (``/readyz``) and the shared rate limiters
                             (the SMS sender's, handed in by :mod:`boot.kinds`).
- :mod:`workers.queues`      the queue names and the current broker the actors bind to.
- :mod:`workers.command`     the dramatiq command line of ``kartabl worker`` (its broker
                             module is :mod:`boot.worker`: the process boots as a worker).
- :mod:`workers.actors`      the actors; they carry ids, open a session, call the core.
- :mod:`workers.embedded`    the in-process worker of the embedded mode.
- :mod:`workers.sweeps`      re-enqueue what the database says is unfinished.
- :mod:`workers.scheduler`   runs the sweep every few seconds (one sweeper per tick).
- :mod:`workers.deadletters` list and requeue dead-lettered messages.
- :mod:`workers.status`      queue depths and backlog counts for ``kartabl status`` and /readyz.

Importing this package imports nothing else: actor modules must only be imported after
:func:`workers.broker.setup_broker` has set the broker.
"""
