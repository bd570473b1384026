"""Telegram and Bale bots: updates in by webhook (:mod:`.webhook`) or long polling
(:mod:`.poller`), turned into messages by :mod:`.updates`; replies leave through
:mod:`responders.telegram`. :mod:`.standin` is a local Bot API server for tests and the demo."""
