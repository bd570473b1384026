"""Rubika bots on Rubika's official Bot API: updates in by polling (:mod:`.poller`) or by
webhook (:mod:`.webhook`), turned into messages by :mod:`.updates`, their files fetched by
:mod:`.files`; replies leave through :mod:`responders.rubika`. :mod:`.api` is the one HTTP
client (httpx, not a Rubika library: README, "Rubika"); :mod:`.standin` a local Bot API
server speaking the same protocol, for the tests and the demo."""
