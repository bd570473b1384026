"""Which sender serves each channel in this process.

A channel with a real sender configured gets it: email by SMTP (:mod:`responders.email`)
when the channels file has at least one mailbox with an ``smtp`` account. Every other
channel is served by the sandbox sender, which records what it would send in the database
and reports it delivered (the embedded demo; the channels without credentials), and that is
logged as a warning. Any process that dispatches replies calls :func:`install_senders` once
at start-up; a missing sender is a configuration error (``LookupError``), never a silent
fallback.
"""

from __future__ import annotations

import logging

from config.channels import ChannelsConfig, get_channels
from config.settings import Settings, get_settings
from responders.base import register
from responders.email import SmtpSender
from responders.sandbox import install as install_sandbox

log = logging.getLogger(__name__)


def install_senders(channels: ChannelsConfig | None = None, *,
                    settings: Settings | None = None) -> list[str]:
    """Register a sender for every channel; returns the channels served by the sandbox.
    Processes call it through their composition (:func:`boot.start`), never directly."""
    channels = channels if channels is not None else get_channels()
    settings = settings or get_settings()
    if any(m.smtp is not None for m in channels.email.mailboxes):
        try:
            smtp = register(SmtpSender(
                channels.email, sending_stale_s=settings.sending_stale_s))
        except ValueError as exc:  # a configuration that could send a reply twice
            raise SystemExit(f"email sender: {exc}") from exc
        log.info("email replies leave by SMTP: %r", smtp)
        if settings.secret_key == Settings.model_fields["secret_key"].default:
            # Real mail goes out with reply tokens signed by a key anyone can read in the
            # source: threading and bounces would trust forged tokens.
            log.error("KARTABL_SECRET_KEY is the development default; set it: it signs the "
                      "reply tokens in the Message-IDs of outgoing mail")
    if channels.telegram.bots:  # Telegram and Bale bots: one sender per channel with bots
        from responders.telegram import TelegramSender

        for channel in sorted({b.channel for b in channels.telegram.bots}):
            try:
                tg = register(TelegramSender(channel, channels.telegram.bots,
                                             sending_stale_s=settings.sending_stale_s))
            except ValueError as exc:  # a send that could outlive the reconcile sweep
                raise SystemExit(f"{channel} sender: {exc}") from exc
            log.info("%s replies leave by the Bot API: %r", channel, tg)
    if channels.sms is not None:  # SMS through Kavenegar
        from responders.sms import KavenegarSender

        try:
            sms = register(KavenegarSender(channels.sms,
                                           sending_stale_s=settings.sending_stale_s))
        except ValueError as exc:  # a send that could outlive the reconcile sweep
            raise SystemExit(f"sms sender: {exc}") from exc
        log.info("sms replies leave by Kavenegar: %r", sms)
    sandboxed = [s.channel for s in install_sandbox()]
    if sandboxed:
        log.warning(
            "channels served by the sandbox sender (nothing leaves this machine): %s",
            ", ".join(sandboxed),
        )
    return sandboxed
