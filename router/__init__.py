"""The router: one stored inbound message in, a recognised customer, a conversation and an
assignee out.

- :mod:`router.text`        normalisation of Persian/Arabic/English text for matching;
- :mod:`router.identity`    addresses (phone, email, messenger ids), match-or-create, link, merge;
- :mod:`router.threading`   which conversation a message continues (or reopens, or starts);
- :mod:`router.assignment`  routing rules choose the team, then a person or the triage queue;
- :mod:`router.route`       the whole pipeline for one message, in one idempotent transaction;
- :mod:`router.teams`       creates the teams named in the routing file;
- :mod:`router.history`     a customer's conversations across every channel.
"""
