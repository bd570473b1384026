"""The router: stored inbound messages in; for each, a recognised customer, a conversation
and an assignee (or the triage queue) out.

- :mod:`router.text`        normalisation of Persian/Arabic/English text for matching;
- :mod:`router.identity`    addresses (phone, email, messenger ids), merge chains, link, merge;
- :mod:`router.identity_many`  match-or-create for a whole batch of senders at once;
- :mod:`router.threading`   which conversation a message continues (or reopens, or starts);
- :mod:`router.assignment`  the routing rules: which team;
- :mod:`router.placement`   which person in the team (or its queue), race-safe, per batch;
- :mod:`router.batch`       the whole pipeline for a batch of messages, in one idempotent
  transaction; :mod:`router.route` routes one message through it;
- :mod:`router.teams`       creates the teams named in the routing file.
"""
