"""The outbound side: the sender contract and registry (:mod:`responders.base`), the
sandbox sender (:mod:`responders.sandbox`), rendering (:mod:`responders.render`) and the
outbox that claims, sends, records and reconciles (:mod:`responders.dispatch`)."""
