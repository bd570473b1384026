"""Stored and reflected XSS, and template injection (threats.md: a mail subject, an incoming
HTML body, an attachment's name, an SVG; ``from_string(user_text)``).

Every customer-controlled field of team A's conversation holds :data:`PAYLOAD` (see the
conftest). Every HTML page that exists (:data:`GET_URLS`, which the GET walk keeps complete)
is fetched by a coordinator and parsed: no script but the page's own from /static/, no
element with an ``on*`` attribute, no ``javascript:``/``data:`` link, no frame, no injected
htmx attribute, and ``{{7*7}}`` never rendered as 49. Each page must show the fields it is
meant to show, escaped (:data:`SHOWN`), so "nothing dangerous" cannot pass by showing
nothing. The JSON API carries the same fields as JSON strings, exactly as stored.

The pages' own tests (tests/console/pages/test_security.py) check a few fields on a few
pages; this one is the whole matrix, plus reflected input (query strings, form errors).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from html.parser import HTMLParser
from typing import Any
from urllib.parse import quote

from markupsafe import escape

from tests.console.security.conftest import PAYLOAD, Caller, World, evil
from tests.console.security.tables import get_urls

URL_ATTRS = {"href", "src", "action", "formaction", "xlink:href", "poster", "data",
             "background", "srcset", "ping"}
FORBIDDEN_TAGS = {"iframe", "frame", "object", "embed", "applet", "base", "style", "link"}
# FastAPI's Swagger UI and ReDoc: its own inline script and CDN assets (no CSP is sent
# for them, console/app.py), and no stored data in them.
FASTAPI_DOCS = {"/docs", "/redoc", "/docs/oauth2-redirect"}
_BAD_SCHEME = re.compile(r"^\s*(javascript|vbscript|data)\s*:", re.IGNORECASE)


class _Scan(HTMLParser):
    """What a browser would run or load from the page's markup."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.problems: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._element(tag, attrs)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._element(tag, attrs)

    def _element(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "script" and not a.get("src", "").startswith("/static/"):
            self.problems.append(f"<script {a}>")
        own_link = tag == "link" and (a.get("href", "").startswith("/static/")
                                      or (a.get("rel") == "icon" and a.get("href") == "data:,"))
        if tag in FORBIDDEN_TAGS and not own_link:
            self.problems.append(f"<{tag} {a}>")
        if tag == "meta" and "http-equiv" in a:
            self.problems.append(f"<meta http-equiv {a}>")
        if tag == "form" and not re.match(r"^/(?!/)", a.get("action", "/")):
            self.problems.append(f"<form action={a.get('action')!r}>")
        for name, value in a.items():
            if name.startswith("on"):
                self.problems.append(f"<{tag} {name}={value!r}>")
            if name.removeprefix("data-").startswith("hx-") and "xss" in value:
                self.problems.append(f"<{tag} {name}={value!r}>")
            if name in URL_ATTRS and _BAD_SCHEME.match(value) and not own_link:
                self.problems.append(f"<{tag} {name}={value!r}>")


def unsafe_markup(html: str) -> list[str]:
    """What is wrong with ``html``: markup a browser would run, and the payload's raw
    forms anywhere in the text (an escaped payload has none of them)."""
    scan = _Scan()
    scan.feed(html)
    scan.close()
    raw = [s for s in ("<script>alert", "<img src=x", "<svg onload", "onerror=alert(1)>",
                       "</textarea><", "</title><", "ssti49") if s in html]
    return scan.problems + [f"raw {s!r}" for s in raw]


def test_the_scan_finds_what_it_is_for() -> None:
    """The checker itself: each payload, unescaped, is caught; escaped, it is not."""
    assert unsafe_markup(str(escape(evil("f")))) == []
    assert unsafe_markup('<script src="/static/htmx.min.js" defer></script>') == []
    assert unsafe_markup('<link rel="icon" href="data:,">') == []  # the empty favicon
    for bad in (evil("f"), "<a href=' javascript:x'>", '<div hx-get="/xss">', "<p>ssti49</p>",
                '<img src="data:text/html,x">', '<iframe src="/x">', '<b onclick="x">',
                "<script>x</script>", '<form action="https://evil.example/">',
                '<link rel="stylesheet" href="data:text/css,x">', '<link href="//evil/x.css">'):
        assert unsafe_markup(bad), bad


# Which seeded fields each page shows (as the coordinator, team A's ids). A field missing
# here is a page that stopped showing it, or shows it unescaped: both fail.
_CONV = ("name", "tag", "display", "tguser", "subject", "subject2", "text", "text2", "sender",
         "file", "ctype", "referral", "note", "rejected", "review", "original", "edited",
         "error", "failreason", "reply", "team", "person", "replyfile")
# A queue row previews the first PREVIEW_CHARS of the last message; the account page cuts
# a session's user agent: the part shown must still be the escaped payload.
_ROW = ("name", "subject", "subject2", "text2:60", "tgtext:60", "team", "person")
SHOWN: dict[str, tuple[str, ...]] = {
    "/conversations/{t.conv}": _CONV,
    "/conversations/{t.conv2}": ("name", "tag", "display", "tguser", "subject", "subject2",
                                 "tgtext"),
    "/conversations/{t.conv}/status?v=0.0.99999999": ("review", "error"),
    "/conversations/{t.conv}/status?v=0.0.99999999&from=1.0.1": ("review", "error"),
    "/conversations/{t.conv}/timeline?before=9999999999999999.2.1": (
        "subject", "text", "text2", "sender", "file", "ctype", "referral", "note", "rejected",
        "review", "original", "edited", "error", "failreason", "reply", "team", "person"),
    "/customers?q=x-name-x": ("name", "tag"),
    "/customers?q=7770001": ("name", "tag"),
    "/customers/{t.customer}": ("name", "tag", "display", "tguser", "subject", "subject2"),
    "/customers/{t.customer}/merge?into={t.customer2}": ("name", "tag"),
    "/customers/{t.customer2}/merge?q=x-name-x": ("name",),
    "/queues?queue=open": _ROW,
    "/queues?queue=team:{w.team_a}": _ROW,
    "/queues/live?queue=open": _ROW,
    "/queues?queue=approval": ("name", "subject", "text2:60", "team", "person"),
    "/reports": ("team", "person"),
    "/account": ("token", "agent:60"),
    "/canned": ("canned", "cannedfa:40", "canneden:40"),
    "/canned/{t.canned}": ("canned", "cannedfa", "canneden"),
}
SHOWN_JSON: dict[str, tuple[str, ...]] = {
    # files attached to replies are console-only for now (README, The JSON API)
    "/api/v1/conversations/{t.conv}": tuple(f for f in _CONV if f != "replyfile"),
    "/api/v1/conversations/{t.conv2}": ("name", "tag", "display", "tguser", "subject2",
                                        "tgtext"),
    "/api/v1/queues/open": tuple(f for f in _ROW if ":" not in f),
    "/api/v1/customers?q=x-name-x": ("name", "tag", "display", "tguser"),
    "/api/v1/customers/{t.customer}": ("name", "tag", "display", "tguser", "subject"),
    "/api/v1/customers/{t.customer}/merge-preview?into={t.customer2}": ("tag", "display"),
    "/api/v1/replies/{t.pending}": ("reply",),
    "/api/v1/reports?start={w.day_from}&end={w.day_to}": ("team", "person"),
    "/api/v1/canned": ("canned", "cannedfa", "canneden"),
    "/api/v1/canned/{t.canned}": ("canned", "cannedfa", "canneden"),
}


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


def _field_value(field: str) -> str:
    """The value seeded for ``field`` ("text2:60": its first 60 characters)."""
    name, _, cut = field.partition(":")
    value = {"reply": evil("reply") + "-pending", "token": evil("token", short=True),
             "tguser": "@" + evil("tguser")}.get(name, evil(name))
    return value[:int(cut)] if cut else value


def _coordinator(world: World, sign_in: Callable[..., Caller]) -> Caller:
    return sign_in(world.coord, user_agent=evil("agent"))


def test_every_page_shows_every_customer_field_as_text(world: World, sign_in) -> None:
    coord = _coordinator(world, sign_in)
    wanted = {u.format(w=world, t=world.a): fields for u, fields in SHOWN.items()}
    problems: dict[str, Any] = {}
    pages = 0
    for _path, url in get_urls(world, world.a):
        r = coord.request("GET", url)
        assert r.status_code < 500, (url, r.status_code)
        if not r.headers.get("content-type", "").startswith("text/html"):
            continue
        if url in FASTAPI_DOCS:
            assert "x-" not in r.text or "-x</" not in r.text, url
            continue
        pages += 1
        found = unsafe_markup(r.text)
        missing = [f for f in wanted.pop(url, ()) if str(escape(_field_value(f))) not in r.text]
        if found or missing:
            problems[url] = {"unsafe": found, "not shown escaped": missing}
    assert problems == {}
    assert wanted == {}, "SHOWN names URLs the walk no longer fetches"
    assert pages >= 30


def test_the_mail_html_is_shown_sanitised(world: World, sign_in) -> None:
    page = _coordinator(world, sign_in).request("GET", f"/conversations/{world.a.conv}").text
    assert "<p>x-html-x safe paragraph</p>" in page  # HTML, not text
    assert unsafe_markup(page) == []
    assert "hx link" in page and 'hx-trigger="load"' not in page
    view = _coordinator(world, sign_in).request("GET", f"/api/v1/conversations/{world.a.conv}")
    html = [i["html"] for i in view.json()["timeline"] if i.get("html")]
    assert len(html) == 1 and "x-html-x safe paragraph" in html[0]
    assert unsafe_markup(html[0]) == []


def test_the_api_carries_every_field_as_json_data(world: World, sign_in) -> None:
    coord = _coordinator(world, sign_in)
    token = sign_in(world.coord, via="token")
    wrong: dict[str, Any] = {}
    for template, fields in SHOWN_JSON.items():
        url = template.format(w=world, t=world.a)
        for caller in (coord, token):
            r = caller.request("GET", url)
            assert r.status_code == 200, (url, r.text[:300])
            assert r.headers["content-type"] == "application/json"
            assert r.headers["x-content-type-options"] == "nosniff"
            strings = set(_strings(r.json()))
            missing = [f for f in fields if _field_value(f) not in strings]
            if missing:
                wrong[url] = missing
    assert wrong == {}
    # GET_URLS lists every JSON route; each is JSON (or the CSV download) whatever it holds
    for path, url in get_urls(world, world.a):
        if path.startswith("/api/") and not path.endswith(".csv"):
            r = coord.request("GET", url)
            assert r.headers["content-type"] == "application/json", url
            json.loads(r.text)


def _reflections(world: World) -> list[str]:
    """URLs that put the payload back into a page: search boxes, filters, error details,
    the flash message key, the login's next, a reset token."""
    p = quote(PAYLOAD, safe="")
    a = world.a
    return [
        f"/customers?q={p}", f"/customers/{a.customer}/merge?q={p}",
        f"/customers/{a.customer}/merge?into={p}", f"/queues?queue={p}",
        f"/queues?channel={p}", f"/queues?status={p}", f"/queues?team={p}", f"/queues?age={p}",
        f"/queues?queue=open&cursor={p}", f"/queues/live?queue={p}",
        f"/reports?start={p}&end={p}", f"/reports.csv?start={p}",
        f"/conversations/{a.conv}?done={p}", f"/customers/{a.customer}?done={p}",
        f"/conversations/{a.conv}/status?v={p}", f"/conversations/{a.conv}/status?from={p}",
        f"/conversations/{a.conv}/timeline?before={p}", f"/login?next=/{p}", f"/login?next={p}",
        f"/reset/{p}", f"/{p}", f"/conversations/{p}", "/conversations/999999",
        f"/api/v1/customers?q={p}", f"/api/v1/queues/{p}",
    ]


def test_reflected_input_is_text(world: World, sign_in, app) -> None:
    coord = _coordinator(world, sign_in)
    problems: dict[str, Any] = {}
    for url in _reflections(world):
        r = coord.request("GET", url)
        assert r.status_code < 500, (url, r.status_code, r.text[:300])
        ctype = r.headers.get("content-type", "")
        if ctype.startswith("text/html") and (found := unsafe_markup(r.text)):
            problems[url] = found
        elif not ctype.startswith(("text/html", "application/json", "text/csv")):
            problems[url] = f"served as {ctype!r}"
    # The locale switch and the login redirect only ever go to a path on this site.
    r = coord.request("GET", "/locale/%22%3E%3Cimg%20src%3Dx%20onerror%3Dalert(1)%3E"
                             "?next=//evil.example/")
    assert r.status_code == 303 and r.headers["location"] == "/queues"
    assert problems == {}


def test_form_errors_and_previews_show_typed_text_as_text(world: World, sign_in) -> None:
    """A refused form redirects to a page (post/redirect/get) that shows what was typed and
    why (the reason may quote the input); a preview renders the draft through the reply
    template, where the body and the customer's name are data, never template source."""
    coord = _coordinator(world, sign_in)
    a, typed = world.a, evil("typed")
    posts = [
        (f"/conversations/{a.conv}/refer", {"person_id": "999999", "note": typed}),
        (f"/conversations/{a.conv}/handover", {"person_id": "999999", "note": typed}),
        (f"/conversations/{a.conv}/assign", {"person_id": PAYLOAD}),
        (f"/customers/{a.customer}/link", {"kind": "email", "address": typed}),
        (f"/customers/{a.customer}/tags", {"tag": "x" * 500}),
        (f"/customers/{a.customer}/merge", {"into": PAYLOAD}),
        (f"/replies/{a.pending}/reject", {"comment": ""}),
        ("/account/tokens", {"name": typed, "scopes": "no-such-scope"}),
    ]
    problems: dict[str, Any] = {}
    for url, form in posts:
        r = coord.request("POST", url, data={**form, "csrf_token": coord.csrf})
        if r.status_code == 303:  # post/redirect/get: the refusal is shown by the GET
            assert "failed=" in r.headers["location"], (url, r.headers["location"])
            r = coord.request("GET", r.headers["location"])
            assert 'id="action-error"' in r.text or 'id="token-error"' in r.text or \
                'id="error-detail"' in r.text, url
        else:
            assert 400 <= r.status_code < 500, (url, r.status_code)
        ctype = r.headers["content-type"]
        if ctype.startswith("text/html") and (found := unsafe_markup(r.text)):
            problems[url] = found
        elif not ctype.startswith(("text/html", "application/json")):
            problems[url] = f"served as {ctype!r}"  # FastAPI's 422 is JSON: data, not markup
    assert problems == {}
    refused = coord.request("POST", f"/conversations/{a.conv}/refer",
                            data={"person_id": "999999", "note": typed, "csrf_token": coord.csrf})
    refused = coord.request("GET", refused.headers["location"])
    assert str(escape(typed)) in refused.text  # kept in the textarea, as text
    refused = coord.request("POST", f"/conversations/{a.conv}/handover",
                            data={"person_id": "999999", "note": typed, "csrf_token": coord.csrf})
    refused = coord.request("GET", refused.headers["location"])
    assert str(escape(typed)) in refused.text  # the hand-over panel's note, as text

    for form in ({"body": typed}, {"body": typed, "template": "default"},
                 {"edited_body": typed, "reply_id": str(a.pending)}):
        r = coord.request("POST", f"/conversations/{a.conv}/preview",
                          data={**form, "csrf_token": coord.csrf})
        assert r.status_code == 200, r.text[:300]
        assert unsafe_markup(r.text) == [], form
        assert str(escape(typed)) in r.text and "ssti{{7*7}}" in r.text
    # A token made on the account page: its name is shown on the page that answers.
    made = coord.request("POST", "/account/tokens", data={
        "name": evil("newtoken", short=True), "scopes": "read", "csrf_token": coord.csrf})
    assert made.status_code == 200 and unsafe_markup(made.text) == []
    assert str(escape(evil("newtoken", short=True))) in made.text

    api = coord.request("POST", f"/api/v1/conversations/{a.conv}/preview",
                        json={"body": typed}, headers={"X-CSRF-Token": coord.csrf})
    assert api.status_code == 200 and typed in api.json()["text"]
    assert "ssti49" not in api.text


def test_login_form_keeps_the_typed_username_as_text(app, db) -> None:
    from fastapi.testclient import TestClient

    with TestClient(app, base_url="https://testserver") as c:
        r = c.post("/login", data={"username": evil("user"), "password": "x",
                                   "next": "/" + PAYLOAD})
    # refused: 303 back to the sign-in page, which keeps the username as typed
    assert r.history[0].status_code == 303 and 'data-refused="login_wrong"' in r.text
    assert unsafe_markup(r.text) == []
    assert str(escape(evil("user")[:64])) in r.text or str(escape(evil("user"))) in r.text
