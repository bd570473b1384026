"""The generic API channel (issue 16, part 2): any system Kartabl does not speak natively
sends its users' messages by a signed HTTP POST (:mod:`channels.api.webhook`) and gets the
approved replies by a signed POST to its callback URL (:mod:`responders.api_channel`). The
contract (headers, signature, JSON shapes, errors) is the README's "The generic API
channel"; :mod:`channels.api.signing` is the signature, :mod:`channels.api.standin` a
stand-in for the external system."""
