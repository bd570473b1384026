"""Which sender serves each channel in this process.

A channel with a real sender configured gets it: email by SMTP (:mod:`responders.email`)
when the channels file has at least one mailbox with an ``smtp`` account, Telegram and Bale
by the Bot API (:mod:`responders.telegram`) for the channels with bots, SMS by Kavenegar
(:mod:`responders.sms`) when the file has an ``[sms]`` section, Instagram and WhatsApp by
the Graph API (:mod:`responders.meta`) for those with accounts in ``[meta]``. Every other
channel is served by the sandbox sender, which records what it would send in the database
and reports it delivered (the embedded demo; the channels without credentials), and that is
logged as a warning. Any process that dispatches replies calls :func:`install_senders` once
at start-up, through its composition (:mod:`boot.kinds`, which also closes them at stop); a
missing sender is a configuration error (``LookupError``), never a silent fallback.
(:mod:`responders.sms`) when the file has an ``[sms]`` section, Rubika by its Bot API
(:mod:`responders.rubika`) when it has Rubika bots. Every other channel is
served by the sandbox sender, which records what it would send in the database and reports
it delivered (the embedded demo; the channels without credentials), and that is logged as a
warning. Any process that dispatches replies calls :func:`install_senders` once at start-up,
through its composition (:mod:`boot.kinds`, which also closes them at stop); a missing
sender is a configuration error (``LookupError``), never a silent fallback.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import partial

from config.channels import ChannelsConfig
from config.settings import Settings
from kartabl.outbound import RateLimiterFactory, Sender, register
from responders.sandbox import install as install_sandbox

log = logging.getLogger(__name__)

# What a channel's real sender is, by way of what, and how to build it (lazily: the Bot
# API's library is loaded only by a process with bots).
Maker = tuple[str, str, Callable[[], Sender]]


def install_senders(channels: ChannelsConfig, *, settings: Settings,
                    rate_limiter: RateLimiterFactory) -> list[str]:
    """Register a sender for every channel; returns the channels served by the sandbox.
    Processes call it through their composition (:func:`boot.start`), never directly;
    ``rate_limiter`` makes the limits shared across processes (the SMS rate): the
    composition hands in :func:`workers.broker.rate_limiter`, and the ``settings`` it booted
    with (read once at the process edge, never here)."""
    for channel, by, make in _real_senders(channels, settings, rate_limiter):
        try:
            sender = register(make())
        except ValueError as exc:
            # a configuration that could send a reply twice, or a send that could outlive
            # the reconcile sweep
            raise SystemExit(f"{channel} sender: {exc}") from exc
        log.info("%s replies leave by %s: %r", channel, by, sender)
        if channel == "email" and (
                settings.secret_key == Settings.model_fields["secret_key"].default):
            # Real mail goes out with reply tokens signed by a key anyone can read in the
            # source: threading and bounces would trust forged tokens.
            log.error("KARTABL_SECRET_KEY is the development default; set it: it signs the "
                      "reply tokens in the Message-IDs of outgoing mail")
    sandboxed = [s.channel for s in install_sandbox()]
    if sandboxed:
        log.warning(
            "channels served by the sandbox sender (nothing leaves this machine): %s",
            ", ".join(sandboxed),
        )
    return sandboxed


def _real_senders(channels: ChannelsConfig, settings: Settings,
                  rate_limiter: RateLimiterFactory) -> list[Maker]:
    stale = settings.sending_stale_s
    makers: list[Maker] = []
    if any(m.smtp is not None for m in channels.email.mailboxes):
        from responders.email import SmtpSender

        makers.append(("email", "SMTP", partial(SmtpSender, channels.email,
                                                 sending_stale_s=stale,
                                                 attachments_dir=settings.attachments_dir)))
    if channels.telegram.bots:  # Telegram and Bale bots: one sender per channel with bots
        from responders.telegram import TelegramSender

        bots = channels.telegram.bots
        for channel in sorted({b.channel for b in bots}):
            makers.append((channel, "the Bot API", partial(
                TelegramSender, channel, bots, sending_stale_s=stale,
                attachments_dir=settings.attachments_dir)))
    if (sms := channels.sms) is not None:  # SMS through Kavenegar
        from responders.sms import KavenegarSender

        limiter = rate_limiter("sms-send", sms.rate_per_s)
        makers.append(("sms", "Kavenegar", partial(KavenegarSender, sms, limiter=limiter,
                                                   sending_stale_s=stale)))
    if channels.api:  # generic API channels: one sender, a callback URL per channel
        from responders.api_channel import ApiChannelSender

        makers.append(("api", "signed callbacks", partial(
            ApiChannelSender, channels.api, sending_stale_s=stale,
            attachments_dir=settings.attachments_dir)))
    # The website widget needs nothing but the database: its replies go to the visitor's
    # event log, which the widget reads (responders/webchat.py).
    from responders.webchat import WebchatSender

    makers.append(("webchat", "the visitors' event logs",
                   partial(WebchatSender, away_s=channels.webchat.away_s)))
    if (meta := channels.meta) is not None:  # Instagram and WhatsApp through Meta
        from responders.meta import MetaSender

        for product, accounts in (("instagram", meta.instagram), ("whatsapp", meta.whatsapp)):
            if accounts:
                makers.append((product, "the Graph API", partial(
                    MetaSender, product, meta, sending_stale_s=stale)))
    if channels.rubika.bots:  # Rubika bots (responders/rubika.py)
        from responders.rubika import RubikaSender

        makers.append(("rubika", "Rubika's Bot API", partial(
            RubikaSender, channels.rubika.bots, sending_stale_s=stale,
            attachments_dir=settings.attachments_dir)))
    return makers
