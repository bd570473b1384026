"""The outbound side: the senders that implement the core's outbound port
(:mod:`kartabl.outbound`: the sender contract and the registry), the sandbox sender
(:mod:`responders.sandbox`), rendering (:mod:`responders.render`) and the outbox that
claims, sends, records and reconciles (:mod:`responders.dispatch`)."""
