"""The requests the security tests send: every GET route's URLs (:data:`GET_URLS`) and one
valid request per cookie-signed state change (:data:`REQUESTS`), with the unsafe routes that
take no session cookie and so no CSRF token (:data:`EXEMPT`); :func:`send` sends one.
``{t.*}`` are the ids of one team (:class:`~tests.console.security.conftest.Ids`), ``{w.*}``
the world's.

The tests walk the app's routes and fail when a route is missing here: adding a route means
adding its requests, and so its security checks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tests.console.security.conftest import Caller, Ids, World

UNSAFE = ("POST", "PUT", "PATCH", "DELETE")


@dataclass(frozen=True)
class Req:
    """One request to a route: ``url`` and ``body`` are formatted with ``t`` (an
    :class:`Ids`) and ``w`` (the :class:`World`). Under /api/ the body is JSON, elsewhere
    a form."""

    url: str
    body: dict[str, Any] | None = None

    def fill(self, w: World, t: Ids) -> tuple[str, dict[str, Any] | None]:
        def one(v: Any) -> Any:
            if isinstance(v, list):
                return [one(x) for x in v]
            if not isinstance(v, str):
                return v
            text = v.format(w=w, t=t)
            return int(text) if v.startswith("{") and text.isdigit() else text

        return one(self.url), None if self.body is None else {
            k: one(v) for k, v in self.body.items()}


def send(caller: Caller, method: str, req: Req, w: World, t: Ids, *,
         csrf: str | None = None, csrf_in: str = "header") -> Any:
    """``req`` by ``caller``: the CSRF token (when given) as the X-CSRF-Token header or the
    csrf_token form field."""
    url, body = req.fill(w, t)
    headers = {"X-CSRF-Token": csrf} if csrf is not None and csrf_in == "header" else {}
    if url.startswith("/api/"):
        return caller.request(method, url, json=body, headers=headers)
    form = {k: str(v) for k, v in (body or {}).items()}
    if csrf is not None and csrf_in == "form":
        form["csrf_token"] = csrf
    return caller.request(method, url, data=form, headers=headers)


_Q = ("triage", "approval", "mine", "open", "overdue", "team:{w.team_a}", "scheduled")
_RANGE = "start={w.day_from}&end={w.day_to}"
# Every GET route, with the URLs that exercise it (the seed's ids of team A for {t.*}).
GET_URLS: dict[str, list[str]] = {
    "/openapi.json": ["/openapi.json"], "/docs": ["/docs"], "/redoc": ["/redoc"],
    "/docs/oauth2-redirect": ["/docs/oauth2-redirect"],
    "/healthz": ["/healthz"], "/readyz": ["/readyz"], "/metrics": ["/metrics"], "/": ["/"],
    "/api/v1/status": ["/api/v1/status"],
    "/api/v1/me": ["/api/v1/me"], "/api/v1/tokens": ["/api/v1/tokens"],
    "/api/v1/queues": ["/api/v1/queues", "/api/v1/queues?channel=email&status=open"
                       "&min_age_hours=1&team_id={w.team_a}"],
    "/api/v1/queues/{name}": [f"/api/v1/queues/{q}" for q in _Q],
    "/api/v1/conversations/{cid}": ["/api/v1/conversations/{t.conv}",
                                    "/api/v1/conversations/{t.conv2}"],
    "/api/v1/replies/{rid}": ["/api/v1/replies/{t.pending}", "/api/v1/replies/{t.draft}"],
    "/api/v1/customers": ["/api/v1/customers?q=x-name-x", "/api/v1/customers?q=7770001"],
    "/api/v1/search": ["/api/v1/search?q=x-text-x", "/api/v1/search?q=x%20-y&channel=email"
                       "&team_id={w.team_a}&assignee_id={w.agent_a}&status=open"
                       "&from={w.day_from}&to={w.day_to}&limit=1"],
    "/search": ["/search", "/search?q=x-text-x", "/search?q=x-note-x", "/search?q=x&channel="
                "email&team={w.team_a}&assignee={w.agent_a}&status=open&from={w.day_from}"
                "&to={w.day_to}", "/search?q=x-text-x&from=1405/13/01"],
    "/api/v1/customers/{customer_id}": ["/api/v1/customers/{t.customer}"],
    "/api/v1/customers/{customer_id}/merge-preview": [
        "/api/v1/customers/{t.customer}/merge-preview?into={t.customer2}"],
    "/api/v1/reports": ["/api/v1/reports?" + _RANGE],
    "/api/v1/reports.csv": ["/api/v1/reports.csv?" + _RANGE],
    "/messages/{message_id}/attachments/{key}": ["/messages/{t.message}/attachments/{t.key}"],
    "/replies/{rid}/attachments/{aid}": ["/replies/{t.pending}/attachments/{t.reply_file}"],
    "/conversations/{cid}": ["/conversations/{t.conv}", "/conversations/{t.conv2}",
                             "/conversations/{t.conv}?failed=x"],
    "/conversations/{cid}/status": ["/conversations/{t.conv}/status?v=0.0.0",
                                    "/conversations/{t.conv}/status?v=0.0.99999999",
                                    "/conversations/{t.conv}/status?v=0.0.99999999&from=1.0.1"],
    # a cursor past every item: the newest window (all of a short conversation)
    "/conversations/{cid}/timeline": ["/conversations/{t.conv}/timeline",
                                      "/conversations/{t.conv}/timeline"
                                      "?before=9999999999999999.2.1"],
    "/customers": ["/customers", "/customers?q=x-name-x", "/customers?q=7770001"],
    "/conversations/new": ["/conversations/new", "/conversations/new?q=x-name-x",
                           "/conversations/new?customer={t.customer}",
                           "/conversations/new?failed=x"],
    "/customers/{customer_id}": ["/customers/{t.customer}"],
    "/customers/{customer_id}/merge": ["/customers/{t.customer}/merge?into={t.customer2}",
                                       "/customers/{t.customer2}/merge?q=x-name-x"],
    "/queues": ["/queues", *(f"/queues?queue={q}" for q in _Q),
                "/queues?queue=open&channel=email&status=open&age=gt1d&team={w.team_a}",
                "/queues?queue=open&open={t.conv}", "/queues?queue=mine&open={t.conv2}"],
    "/queues/live": [f"/queues/live?queue={q}" for q in _Q],
    "/queues/bulk/{event_id}": ["/queues/bulk/{t.bulk}"],
    "/live": ["/live", "/live?since=0", "/live?since=junk",  # conftest: streams end at once
              "/live?conversation={t.conv}", "/live?conversation=junk"],
    "/conversations/{cid}/presence": ["/conversations/{t.conv}/presence"],
    # -- merge --
    "/conversations/{cid}/merge": ["/conversations/{t.conv}/merge",
                                   "/conversations/{t.conv}/merge?into={t.conv2}"],
    "/reports": ["/reports", "/reports?" + _RANGE],
    "/reports.csv": ["/reports.csv?" + _RANGE],
    "/teams/hours": ["/teams/hours", "/teams/hours?year=1405"],
    "/login": ["/login", "/login?next=/queues"],
    "/locale/{locale}": ["/locale/fa?next=/queues"],
    "/reset/{token}": ["/reset/{w.reset_token}"],
    "/account": ["/account", "/account?failed=x"],
    "/canned": ["/canned"],
    "/canned/new": ["/canned/new"],
    "/canned/{canned_id}": ["/canned/{t.canned}"],
    "/api/v1/canned": ["/api/v1/canned", "/api/v1/canned?q=a-"],
    "/api/v1/canned/{canned_id}": ["/api/v1/canned/{t.canned}"],
    "/refused": ["/refused", "/refused?failed=x"],
    "/notifications": ["/notifications", "/notifications?before=99999999",
                       "/notifications?before=junk"],
    "/notifications/unread": ["/notifications/unread"],
    "/api/v1/notifications": ["/api/v1/notifications",
                              "/api/v1/notifications?unread=true&before=99999999&limit=5"],
    # -- webchat -- the website widget's public endpoints (the seed's widget; the stream
    # from no Origin: a same-origin or non-browser reader; tests/channels/webchat/)
    "/widget/{public_id}/loader.js": ["/widget/wseed/loader.js"],
    "/widget/{public_id}/chat.js": ["/widget/wseed/chat.js"],
    "/widget/{public_id}/events": ["/widget/wseed/events?visitor={w.visitor}&last_event_id=0"],
    # the admin's pages (others: a page saying admins manage them, tests/console/test_widgets.py)
    "/widgets": ["/widgets", "/widgets?done=widget_saved"],
    "/widgets/new": ["/widgets/new"],
    "/widgets/{widget_id}": ["/widgets/{w.widget}"],
    # Meta's webhook verification (conftest's app has a [meta] section with this token)
    "/webhooks/meta": ["/webhooks/meta?hub.mode=subscribe"
                       "&hub.verify_token=security-verify-token-0123&hub.challenge=1"],
}
STATIC_URLS = ["/static/console.css", "/static/htmx.min.js", "/static/canned.js",
               "/static/live.js", "/static/bulk.js", "/static/presence.js",
               "/static/notify.js", "/static/keys.js", "/static/inbox.js"]


def get_urls(w: World, t: Ids) -> list[tuple[str, str]]:
    """(route path, URL) for every GET route and the static files."""
    out = [(path, u.format(w=w, t=t)) for path, urls in GET_URLS.items() for u in urls]
    return out + [("/static", u) for u in STATIC_URLS]


# State changes that no session cookie signs, so there is no CSRF token to ask for:
EXEMPT = {
    # Webhooks are called by providers (Kavenegar, Telegram, Bale, Rubika), never by a browser, and
    # authenticated by a secret in the URL or header; no cookie is read.
    ("POST", "/webhooks/sms/receive/{secret}"),
    ("POST", "/webhooks/telegram/{bot_name}"),
    # The generic API channel: an HMAC signature of the body with the channel's secret.
    ("POST", "/webhooks/api/{name}"),
    ("POST", "/webhooks/api/{name}/status"),
    ("POST", "/webhooks/meta"),  # signed by Meta: X-Hub-Signature-256 over the body
    ("POST", "/webhooks/rubika/{bot_name}/{secret}"),
    ("POST", "/webhooks/rubika/{bot_name}/{secret}/receiveUpdate"),
    ("POST", "/webhooks/rubika/{bot_name}/{secret}/receiveInlineMessage"),
    # Login CSRF (signing the victim in as the attacker) is refused by an Origin check
    # instead: there is no session yet to derive a token from (tests/console/test_auth.py,
    # test_login_from_another_site_is_refused).
    ("POST", "/login"),
    # A password reset is authenticated by its one-time token in the URL, which a
    # cross-site attacker does not have; the form reads no cookie.
    ("POST", "/reset/{token}"),
    # -- webchat -- the website widget: a visitor's token in a header (or the widget's own
    # HttpOnly cookie, never the console's), and only from the widget's allowed origins
    # (the Origin header is checked before anything is read), so a cross-site form cannot
    # post in anyone's name (tests/channels/webchat/test_endpoints.py).
    ("POST", "/widget/{public_id}/session"),
    ("POST", "/widget/{public_id}/messages"),
    ("POST", "/widget/{public_id}/rating"),  # the same checks (test_offline.py, rating)
}

C, R, CU = "/api/v1/conversations", "/api/v1/replies", "/api/v1/customers"
# One request per cookie-signed unsafe route, valid but for the CSRF token ({t.*}: the ids of
# one team, :class:`Ids`; also used by the IDOR test with team B's).
REQUESTS: dict[tuple[str, str], Req] = {
    # the conversation page's forms
    ("POST", "/conversations/{cid}/preview"): Req("/conversations/{t.conv}/preview",
                                                  {"body": "hi"}),
    ("POST", "/conversations/{cid}/assign"): Req("/conversations/{t.conv}/assign",
                                                 {"person_id": "{w.coord}"}),
    ("POST", "/queues/bulk"): Req("/queues/bulk", {"action": "tag", "tag": "bulk",
                                                   "ids": "{t.conv}"}),
    ("POST", "/api/v1/conversations/bulk"): Req("/api/v1/conversations/bulk", {
        "action": "tag", "tag": "bulk", "ids": ["{t.conv}"]}),
    ("POST", "/conversations/{cid}/presence"): Req("/conversations/{t.conv}/presence",
                                                   {"state": "drafting"}),
    ("POST", "/conversations/{cid}/refer"): Req("/conversations/{t.conv}/refer",
                                                {"team_id": "{w.team_a}", "note": "n"}),
    ("POST", "/conversations/{cid}/handover"): Req("/conversations/{t.conv}/handover",
                                                   {"team_id": "{w.team_a}", "note": "n"}),
    ("POST", "/conversations/{cid}/close"): Req("/conversations/{t.conv2}/close"),
    ("POST", "/conversations/{cid}/reopen"): Req("/conversations/{t.conv}/reopen"),
    ("POST", "/conversations/{cid}/notes"): Req("/conversations/{t.conv}/notes", {"text": "n"}),
    # statuses (console.pages.statuses)
    ("POST", "/conversations/{cid}/waiting"): Req("/conversations/{t.conv}/waiting"),
    ("POST", "/conversations/{cid}/snooze"): Req("/conversations/{t.conv}/snooze",
                                                 {"until": "2099-01-01 09:00"}),
    ("POST", "/conversations/{cid}/resume"): Req("/conversations/{t.conv}/resume"),
    ("POST", "/conversations/{cid}/replies"): Req("/conversations/{t.conv}/replies",
                                                  {"body": "x"}),
    ("POST", "/replies/{rid}/edit"): Req("/replies/{t.draft}/edit", {"body": "y"}),
    ("POST", "/replies/{rid}/submit"): Req("/replies/{t.draft}/submit"),
    ("POST", "/replies/{rid}/approve"): Req("/replies/{t.pending}/approve",
                                            {"edited_body": "z"}),
    ("POST", "/replies/{rid}/reject"): Req("/replies/{t.pending}/reject", {"comment": "no"}),
    # starting a conversation (a new number: the agent's own team by default)
    ("POST", "/conversations/new"): Req("/conversations/new", {
        "to": "new", "kind": "phone", "address": "09121110000", "body": "x"}),
    ("POST", C): Req(C, {"kind": "phone", "address": "09121110001", "body": "x"}),
    # scheduled send
    ("POST", "/replies/{rid}/schedule"): Req("/replies/{t.draft}/schedule",
                                             {"send_at": "2027-06-01 10:00"}),
    ("POST", "/replies/{rid}/schedule/cancel"): Req("/replies/{t.draft}/schedule/cancel"),
    ("POST", "/replies/{rid}/send-now"): Req("/replies/{t.pending}/send-now"),
    # -- webchat -- the admin's widget pages
    ("POST", "/widgets"): Req("/widgets", {"name": "shop", "origins": "https://a.example",
                                           "color": "#000000", "text_color": "#ffffff"}),
    ("POST", "/widgets/{widget_id}"): Req("/widgets/{w.widget}", {
        "name": "shop", "origins": "https://a.example", "color": "#000000",
        "text_color": "#ffffff"}),
    ("POST", "/replies/{rid}/back-to-draft"): Req("/replies/{t.pending}/back-to-draft"),
    # -- reply windows (Meta): console.pages.reply_windows --
    ("POST", "/replies/{rid}/to-sms"): Req("/replies/{t.pending}/to-sms"),
    # customers
    ("POST", "/customers/{customer_id}/tags"): Req("/customers/{t.customer}/tags",
                                                   {"tag": "vip2"}),
    ("POST", "/customers/{customer_id}/tags/remove"): Req("/customers/{t.customer}/tags/remove",
                                                          {"tag": "vip"}),
    ("POST", "/customers/{customer_id}/link"): Req("/customers/{t.customer}/link",
                                                   {"kind": "email", "address": "n@example.ir"}),
    ("POST", "/customers/{customer_id}/merge"): Req("/customers/{t.customer}/merge",
                                                    {"into": "{t.customer2}"}),
    # the account
    ("POST", "/logout"): Req("/logout"),
    ("POST", "/account/locale"): Req("/account/locale", {"locale": "fa"}),
    ("POST", "/account/sessions/revoke"): Req("/account/sessions/revoke", {"scope": "others"}),
    ("POST", "/account/tokens"): Req("/account/tokens", {"name": "x", "scopes": "read"}),
    ("POST", "/account/tokens/{token_id}/revoke"): Req("/account/tokens/{t.token}/revoke"),
    # canned responses
    ("POST", "/canned"): Req("/canned", {"name": "n", "shortcut": "new-one", "body_en": "x"}),
    ("POST", "/canned/{canned_id}"): Req("/canned/{t.canned}", {
        "name": "n", "shortcut": "a-canned", "body_en": "x", "team_id": "{w.team_a}"}),
    ("POST", "/canned/{canned_id}/delete"): Req("/canned/{t.canned}/delete"),
    ("POST", "/api/v1/canned"): Req("/api/v1/canned", {"name": "n", "shortcut": "new-two",
                                                       "body_en": "x"}),
    ("PATCH", "/api/v1/canned/{canned_id}"): Req("/api/v1/canned/{t.canned}", {"name": "n"}),
    ("DELETE", "/api/v1/canned/{canned_id}"): Req("/api/v1/canned/{t.canned}"),
    ("POST", C + "/{cid}/canned/expand"): Req(C + "/{t.conv}/canned/expand",
                                              {"canned_id": "{t.canned}"}),
    # notifications (one's own: another's is a 404, test_idor.py)
    ("POST", "/notifications/{nid}/read"): Req("/notifications/{t.notice}/read"),
    ("POST", "/notifications/read-all"): Req("/notifications/read-all"),
    ("POST", "/api/v1/notifications/{nid}/read"): Req("/api/v1/notifications/{t.notice}/read"),
    ("POST", "/api/v1/notifications/read-all"): Req("/api/v1/notifications/read-all"),
    # the JSON API
    ("POST", "/api/v1/tokens"): Req("/api/v1/tokens", {"name": "x", "scopes": ["read"]}),
    ("DELETE", "/api/v1/tokens/{token_id}"): Req("/api/v1/tokens/{t.token}"),
    ("POST", "/api/v1/sessions/revoke"): Req("/api/v1/sessions/revoke", {"scope": "others"}),
    ("POST", "/api/v1/people/{person_id}/password-reset"): Req(
        "/api/v1/people/{t.person}/password-reset"),
    ("POST", C + "/{cid}/assign"): Req(C + "/{t.conv}/assign", {"person_id": "{w.coord}"}),
    ("POST", C + "/{cid}/refer"): Req(C + "/{t.conv}/refer",
                                      {"team_id": "{w.team_a}", "note": "n"}),
    ("POST", C + "/{cid}/close"): Req(C + "/{t.conv2}/close"),
    ("POST", C + "/{cid}/reopen"): Req(C + "/{t.conv}/reopen"),
    ("POST", C + "/{cid}/notes"): Req(C + "/{t.conv}/notes", {"text": "n"}),
    ("POST", C + "/{cid}/waiting"): Req(C + "/{t.conv}/waiting"),
    ("POST", C + "/{cid}/snooze"): Req(C + "/{t.conv}/snooze",
                                       {"until": "2030-01-01T09:00:00+00:00"}),
    ("POST", C + "/{cid}/resume"): Req(C + "/{t.conv}/resume"),
    ("POST", C + "/{cid}/replies"): Req(C + "/{t.conv}/replies", {"body": "x"}),
    ("POST", C + "/{cid}/preview"): Req(C + "/{t.conv}/preview", {"body": "x"}),
    ("PATCH", R + "/{rid}"): Req(R + "/{t.draft}", {"body": "y"}),
    ("POST", R + "/{rid}/submit"): Req(R + "/{t.draft}/submit"),
    ("POST", R + "/{rid}/approve"): Req(R + "/{t.pending}/approve", {"body": "z"}),
    ("POST", R + "/{rid}/reject"): Req(R + "/{t.pending}/reject", {"comment": "no"}),
    ("PUT", R + "/{rid}/schedule"): Req(R + "/{t.draft}/schedule",
                                        {"send_at": "2027-06-01T10:00:00+03:30"}),
    ("DELETE", R + "/{rid}/schedule"): Req(R + "/{t.draft}/schedule"),
    ("POST", R + "/{rid}/send-now"): Req(R + "/{t.pending}/send-now"),
    ("POST", R + "/{rid}/back-to-draft"): Req(R + "/{t.pending}/back-to-draft"),
    ("POST", "/api/v1/preview"): Req("/api/v1/preview", {"channel": "sms", "body": "hi"}),
    ("POST", CU + "/{customer_id}/tags"): Req(CU + "/{t.customer}/tags", {"tag": "vip2"}),
    ("DELETE", CU + "/{customer_id}/tags"): Req(CU + "/{t.customer}/tags?tag=vip"),
    ("POST", CU + "/{customer_id}/identities"): Req(CU + "/{t.customer}/identities",
                                                    {"kind": "email",
                                                     "address": "n@example.ir"}),
    ("POST", CU + "/{customer_id}/merge"): Req(CU + "/{t.customer}/merge",
                                               {"into": "{t.customer2}"}),
    # -- merge -- (conv has a reply pending approval: merging it is refused; conv's first
    # message opens it: splitting it is refused; the undo may go through)
    ("POST", "/conversations/{cid}/merge"): Req("/conversations/{t.conv}/merge",
                                                {"into": "{t.conv2}"}),
    ("POST", "/merges/{merge_id}/undo"): Req("/merges/{t.merge}/undo"),
    ("POST", "/conversations/{cid}/split"): Req("/conversations/{t.conv}/split",
                                                {"message_id": "{t.message}"}),
    ("POST", C + "/{cid}/merge"): Req(C + "/{t.conv}/merge", {"into": "{t.conv2}"}),
    ("POST", "/api/v1/merges/{merge_id}/undo"): Req("/api/v1/merges/{t.merge}/undo"),
    ("POST", C + "/{cid}/split"): Req(C + "/{t.conv}/split", {"message_id": "{t.message}"}),
}
