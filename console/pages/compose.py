"""The "New conversation" page: ``GET /conversations/new`` and ``POST /conversations/new``.

(Named ``compose`` so that it is registered before :mod:`console.pages.conversation`,
whose ``/conversations/{cid}`` would otherwise take ``/conversations/new`` for an id.)

The page finds the customer (:func:`console.customer_search.search_customers`, in the
reader's scope; ``?customer=<id>`` preselects one, as the customer's page links), offers
their identities, or a new phone number or email address, the team, the subject (email) and
the text. The POST runs :func:`console.starting.begin` and answers 303 to the new
conversation (``?done=submitted`` or ``drafted``); a refused one answers 303 back to this
page with ``?failed=<id>`` (:mod:`console.flash`): the reason in the reader's language and
everything typed kept. A customer outside the reader's scope is a 404, as everywhere.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from console.customer_search import MAX_QUERY, search_customers
from console.deps import Approval, Principal, get_db, page_principal
from console.flash import failed_id, recall, refused
from console.pages._ui import back, form_text, optional_id, render
from console.refusals import refusal_text
from console.starting import (
    StartRequest,
    begin,
    own_team,
    recipients,
    team_choices,
    templates,
)
from console.templating import request_locale
from kartabl.errors import KartablError, NotFound
from kartabl.workflow.start import TYPED_KINDS

router = APIRouter(include_in_schema=False)
Text = Annotated[str, Form(max_length=20_000)]
Short = Annotated[str, Form(max_length=400)]
SEARCH_LIMIT = 20


@router.get("/conversations/new", response_class=HTMLResponse)
def new_conversation_page(
    request: Request, q: str = "", customer: str = "",
    p: Principal = Depends(page_principal), db: Session = Depends(get_db),
) -> Response:
    q = q[:MAX_QUERY]
    cid = optional_id(customer, "customer")
    chosen = recipients(db, p.person, cid) if cid is not None else None
    flash = recall(db, p, failed_id(request))
    hits = search_customers(db, p.person, q, SEARCH_LIMIT) if q.strip() and chosen is None \
        else []
    kept = flash.kept if flash else {}
    return render(request, "compose.html", {
        "q": q, "hits": hits, "searched": bool(q.strip()), "chosen": chosen,
        "teams": team_choices(db, p.person), "own_team": own_team(db, p.person),
        "templates": templates(), "kinds": TYPED_KINDS, "kept": kept,
        "error": refusal_text(request_locale(request), flash.refusal) if flash else "",
    })


@router.post("/conversations/new")
def start_conversation(
    request: Request, policy: Approval, customer: Short = "", to: Short = "new",
    kind: Short = "phone", address: Short = "", name: Short = "", team_id: Short = "",
    subject: Short = "", body: Text = "", template: Short = "", then: Short = "submit",
    p: Principal = Depends(page_principal), db: Session = Depends(get_db),
) -> Response:
    kept = {"to": to, "kind": kind, "address": address, "name": name, "team_id": team_id,
            "subject": subject, "body": body, "template": template}
    here = "/conversations/new" + (f"?{urlencode({'customer': customer})}"
                                   if customer.strip() else "")
    try:
        started = begin(db, p.person, request.app.state.channels, policy, StartRequest(
            identity_id=optional_id(to, "identity") if to != "new" else None,
            kind=kind.strip(), address=address if to == "new" else "", name=name,
            team_id=optional_id(team_id, "team"), subject=subject, body=form_text(body),
            template=template.strip() or None, submit=then != "save"))
    except NotFound:
        raise  # not there for this reader: the app's 404 page, nothing kept
    except KartablError as exc:
        return refused(db, p, exc, here, kept)
    db.commit()
    return back(f"/conversations/{started.conversation.id}",
                "drafted" if then == "save" else "submitted")
