"""The inbound side: one module per channel (email, sms, telegram) turns raw input into an
:class:`kartabl.messages.InboundMessage` and owns its pollers and webhook handlers. The
channel modules arrive with issues 3 and 4; until then messages enter through
``kartabl inject`` and the demo."""
