"""The Instagram and WhatsApp senders: an approved reply leaves as one Graph API request.

- Instagram, the Send API: ``POST <graph>/<account id>/messages`` with ``{"recipient":
  {"id": <IGSID>}, "message": {"text": ...}}``, and for an account with Meta's Human Agent
  feature (``human_agent = true``) ``"messaging_type": "MESSAGE_TAG", "tag":
  "HUMAN_AGENT"``, which lets the reply leave up to 7 days after the customer's last
  message. Answer: ``{"recipient_id", "message_id"}``.
- WhatsApp, the Cloud API: ``POST <graph>/<phone_number_id>/messages`` with
  ``{"messaging_product": "whatsapp", "recipient_type": "individual", "to": <wa_id>,
  "type": "text", "text": {"body": ...}}``. Answer: ``{"messages": [{"id": <wamid>}]}``;
  the wamid is the provider id the delivery statuses name (:mod:`channels.meta.statuses`).

Outside WhatsApp's 24 h window (the Cloud API answers 131047) a number with a
``reengagement_template`` sends the reply again as that approved template, its text as the
template's one body parameter: the first request was refused, so nothing was sent twice.

Which account or number: the one the customer wrote to (``msg.meta["from"]``), else the
channel's first. One message per reply: Instagram takes 1,000 bytes of text, WhatsApp 4,096
characters; longer, or with files, the reply is refused before anything is sent (files on
these channels are not sent yet; the README says so).

Errors, mapped here by the Graph error codes (:func:`channels.meta.graph.classify`) and
this channel's rows of the one table (:mod:`responders.outcomes`)::

    connection refused, connect or pool timeout          → RetryableDeliveryError
    rate limits 4, 17, 32, 613, 80007, 130429, 131056    → RetryableDeliveryError (60 s)
    transient 1, 2, 133004                               → RetryableDeliveryError
    outside the window: 10 / 2018278, 131047             → PermanentDeliveryError, saying
                                                            so (send by SMS, or a template)
    190 token, 100 parameter, any other Graph error      → PermanentDeliveryError
    a 5xx or an answer that is not a Graph error          → OutcomeUnknown
    read timeout, dropped connection after the request    → OutcomeUnknown

``unknown_outcome = "at_most_once"``, ``can_look_up = False``: the Graph API has no
idempotency key and no way to ask whether a message was sent, and a duplicate in a chat
cannot be told apart, so an unknown outcome fails the reply at once with the reason for a
coordinator to check, as for Telegram. :meth:`MetaSender.status` is None: WhatsApp pushes
its statuses to the webhook, Instagram reports none we use.
"""

from __future__ import annotations

import logging
from typing import Any, Final

import httpx

from channels.meta import graph
from config.meta import InstagramAccount, MetaConfig, WhatsAppNumber
from kartabl.errors import OutcomeUnknown, PermanentDeliveryError, RetryableDeliveryError
from kartabl.messages import OutboundMessage
from kartabl.models import Channel
from kartabl.outbound import DeliveryStatus, Sender, UnknownOutcomePolicy
from responders.outcomes import request_leaves
from responders.preview import MAX_INSTAGRAM_BYTES, MAX_WHATSAPP_CHARS

log = logging.getLogger(__name__)

RATE_RETRY_S: Final = 60.0  # Meta's rate windows are minutes to an hour; try again later
PROVIDER = {Channel.INSTAGRAM: "Instagram", Channel.WHATSAPP: "WhatsApp"}
_NEVER_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout,
               httpx.UnsupportedProtocol)


class MetaSender(Sender):
    """Sends the replies of ``instagram`` or ``whatsapp`` through the Graph API."""

    unknown_outcome: UnknownOutcomePolicy = "at_most_once"
    can_look_up = False

    def __init__(self, channel: Channel | str, config: MetaConfig, *,
                 sending_stale_s: float | None = None) -> None:
        self.channel: str = Channel(channel).value
        ch = Channel(channel)
        if ch not in PROVIDER:
            raise ValueError(f"no Meta sender for {self.channel}")
        self._config = config
        self._provider = PROVIDER[ch]
        self._accounts: list[InstagramAccount | WhatsAppNumber] = list(
            config.instagram if ch is Channel.INSTAGRAM else config.whatsapp)
        if not self._accounts:
            raise ValueError(f"no {self.channel} account in the channels file")
        if sending_stale_s is not None and config.worst_case_s >= sending_stale_s:
            raise ValueError(f"one send may take {config.worst_case_s:.0f} s, not less than "
                             f"KARTABL_SENDING_STALE_S={sending_stale_s:.0f}")
        self._http = graph.client(config)

    def __repr__(self) -> str:  # ids only, never tokens
        return f"<MetaSender {self.channel}: {', '.join(_id(a) for a in self._accounts)}>"

    def close(self) -> None:
        self._http.close()

    def account_for(self, msg: OutboundMessage) -> InstagramAccount | WhatsAppNumber:
        wanted = str(msg.meta.get("from") or "")
        return next((a for a in self._accounts if _id(a) == wanted), self._accounts[0])

    def send(self, msg: OutboundMessage) -> str:
        account = self.account_for(msg)
        text = msg.text.strip()
        if not text:
            raise PermanentDeliveryError("the reply is empty")
        if msg.attachments:
            raise PermanentDeliveryError(f"files are not sent on {self._provider} by Kartabl "
                                         "yet; send them by another channel")
        url = f"{self._config.graph_url}/{_id(account)}/messages"
        payload = self._payload(account, str(msg.recipient).strip(), text)
        token = account.access_token.get_secret_value()
        request_leaves()  # from here on, an unmapped error may follow a sent message
        try:
            response = graph.post_json(self._http, url, token, payload)
        except httpx.HTTPError as exc:
            raise self._transport(exc) from None
        if response.status_code != 200 and isinstance(account, WhatsAppNumber) \
                and account.reengagement_template and _outside_window(response):
            # Refused for the window, so surely not sent: the same reply as the number's
            # approved template (what the approval step allowed, kartabl.workflow.windows)
            template = template_payload(account, str(msg.recipient).strip(), text)
            try:
                response = graph.post_json(self._http, url, token, template)
            except httpx.HTTPError as exc:
                raise self._transport(exc) from None
            if response.status_code == 200:
                log.info("reply %s: outside WhatsApp's 24 h window, sent as template %s",
                         msg.reply_id, account.reengagement_template)
        if response.status_code == 200:
            provider_id = self._provider_id(response)
            log.info("reply %s sent by %s account %s as %s", msg.reply_id, self._provider,
                     _id(account), provider_id)
            return provider_id
        raise map_error(response, self._provider)

    def _payload(self, account: InstagramAccount | WhatsAppNumber, to: str, text: str
                 ) -> dict[str, Any]:
        if isinstance(account, InstagramAccount):
            if len(text.encode()) > MAX_INSTAGRAM_BYTES:
                raise PermanentDeliveryError(
                    f"the reply is {len(text.encode())} bytes; Instagram takes at most "
                    f"{MAX_INSTAGRAM_BYTES}: shorten it")
            body: dict[str, Any] = {"recipient": {"id": to}, "message": {"text": text}}
            if account.human_agent:
                body |= {"messaging_type": "MESSAGE_TAG", "tag": "HUMAN_AGENT"}
            return body
        if len(text) > MAX_WHATSAPP_CHARS:
            raise PermanentDeliveryError(f"the reply is {len(text)} characters; WhatsApp "
                                         f"takes at most {MAX_WHATSAPP_CHARS}: shorten it")
        return {"messaging_product": "whatsapp", "recipient_type": "individual",
                "to": to.lstrip("+"), "type": "text",
                "text": {"preview_url": False, "body": text}}

    def _provider_id(self, response: httpx.Response) -> str:
        try:
            body = response.json()
            found = (body["message_id"] if self.channel == Channel.INSTAGRAM
                     else body["messages"][0]["id"])
        except (ValueError, KeyError, IndexError, TypeError):
            found = None
        if not isinstance(found, str) or not found:
            raise OutcomeUnknown(f"{self._provider} answered 200 without a message id; it "
                                 "may have sent the message")
        return found

    def _transport(self, exc: httpx.HTTPError) -> Exception:
        if isinstance(exc, _NEVER_SENT):
            return RetryableDeliveryError(f"{self._provider}: not sent: {type(exc).__name__}")
        return OutcomeUnknown(f"{self._provider}: no answer after the request went out "
                              f"({type(exc).__name__}); {self._provider} may have sent the "
                              "message")

    def lookup(self, msg: OutboundMessage) -> str | None:
        raise NotImplementedError("the Graph API cannot tell whether a message was sent")

    def status(self, provider_id: str) -> DeliveryStatus | None:
        return None  # WhatsApp pushes statuses to the webhook; Instagram reports none


MAX_TEMPLATE_PARAM: Final = 1024


def template_payload(number: WhatsAppNumber, to: str, text: str) -> dict[str, Any]:
    """The Cloud API's template message: the number's re-engagement template, the reply's
    text as its one body parameter. WhatsApp refuses new lines, tabs and more than four
    spaces in a row in a parameter: they become single spaces."""
    flat = " ".join(text.split())
    if len(flat) > MAX_TEMPLATE_PARAM:
        raise PermanentDeliveryError(
            f"outside WhatsApp's 24 h window the reply goes as a template, whose text takes "
            f"at most {MAX_TEMPLATE_PARAM} characters; it is {len(flat)}: shorten it")
    return {"messaging_product": "whatsapp", "recipient_type": "individual",
            "to": to.lstrip("+"), "type": "template",
            "template": {"name": number.reengagement_template,
                         "language": {"code": number.template_language},
                         "components": [{"type": "body", "parameters": [
                             {"type": "text", "text": flat}]}]}}


def _outside_window(response: httpx.Response) -> bool:
    err = graph.error_of(response)
    return err is not None and graph.classify(err) == "window"


def map_error(response: httpx.Response, provider: str) -> Exception:
    """A non-200 answer as one of ours (the table in the module docstring)."""
    err = graph.error_of(response)
    if err is None:
        if response.status_code >= 500:
            return OutcomeUnknown(f"{provider} answered HTTP {response.status_code} after the "
                                  f"request went out; {provider} may have sent the message")
        return RetryableDeliveryError(f"{provider} refused for now: HTTP "
                                      f"{response.status_code}")
    kind = graph.classify(err)
    if kind == "rate":
        return RetryableDeliveryError(f"{provider}: rate limited ({err})",
                                      retry_after_s=RATE_RETRY_S)
    if kind == "retry":
        return RetryableDeliveryError(f"{provider}: not sent for now ({err})")
    if kind == "window":
        return PermanentDeliveryError(
            f"{provider} refused: the customer's reply window has closed ({err}); send it "
            "by SMS instead, or wait for the customer to write again")
    if err.code == 190:
        return PermanentDeliveryError(f"{provider}: the access token was refused (check the "
                                      f"channels file): {err.message}")
    return PermanentDeliveryError(f"{provider} refused the message: {err}")


def _id(account: InstagramAccount | WhatsAppNumber) -> str:
    return account.id if isinstance(account, InstagramAccount) else account.phone_number_id
