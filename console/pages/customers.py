"""Customers: search, a customer's page, tags, linking an identity, merging (previewed).

- ``GET /customers?q=``: :func:`console.customers.search_customers` (a name in any letter
  form, a phone in any digit form, an email, a messenger id or @username, ``tag:vip``).
- ``GET /customers/{id}``: identities on every channel, conversations in the reader's
  scope, tags; a merged customer redirects to the one it was merged into.
- ``POST /customers/{id}/tags``, ``/tags/remove``, ``/link``: one change each, 303 back
  (a refused one: 303 to the page with ``?failed=<id>``, :mod:`console.flash`).
- ``GET /customers/{id}/merge?q=`` finds the customer to merge into; ``?into=<id>`` shows
  :func:`~console.customers.merge_preview` (what will move); ``POST /customers/{id}/merge``
  merges. Merging is its own permission, and the service refuses a merge that would move
  data out of (or into) a scope the reader cannot see.

Every rule is the service's; this module parses forms and picks templates.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from console import customers as svc
from console.deps import PathId, Principal, get_db, page_principal
from console.flash import failed_id, recall, refused
from console.http_errors import http_status
from console.pages._ui import back, optional_id, render
from console.refusals import refusal, refusal_text
from console.templating import request_locale
from kartabl.errors import KartablError, NotFound, PermissionDenied
from router.identity import KINDS

router = APIRouter(include_in_schema=False)
Short = Annotated[str, Form(max_length=400)]
SEARCH_LIMIT = 50


@router.get("/customers", response_class=HTMLResponse)
def customers_page(
    request: Request, q: str = "", p: Principal = Depends(page_principal),
    db: Session = Depends(get_db),
) -> Response:
    q = q[: svc.MAX_QUERY]
    hits = svc.search_customers(db, p.person, q, SEARCH_LIMIT) if q.strip() else []
    return render(request, "customers.html", {"q": q, "hits": hits, "searched": bool(q.strip())})


def _detail_page(request: Request, db: Session, p: Principal, customer_id: int) -> Response:
    detail = svc.customer_detail(db, p.person, customer_id)
    flash = recall(db, p, failed_id(request))
    if detail.id != customer_id:
        # Merged away: the survivor's page is the customer's page now.
        return RedirectResponse(f"/customers/{detail.id}", status_code=303)
    return render(request, "customer.html", {
        "d": detail, "kinds": KINDS, "may_merge": svc.may_merge(p.person),
        "may_link": svc.may_link(p.person),
        "error": refusal_text(request_locale(request), flash.refusal) if flash else "",
        "kept": flash.kept if flash else {}, "done": request.query_params.get("done", "")[:40],
    })


@router.get("/customers/{customer_id}", response_class=HTMLResponse)
def customer_page(
    request: Request, customer_id: PathId, p: Principal = Depends(page_principal),
    db: Session = Depends(get_db),
) -> Response:
    return _detail_page(request, db, p, customer_id)


def _change(request: Request, db: Session, p: Principal, customer_id: int, done: str,
            kept: dict[str, str], step: Callable[[], object]) -> Response:
    """Run one service change; commit and 303 back, or 303 to the page with the reason."""
    try:
        step()
    except NotFound:
        raise  # the customer is not there for this reader: the app's 404 page
    except PermissionDenied:
        # Who the reader is, not what they typed: the app's 403 page, nothing kept; a 404
        # when the customer is outside their scope (they learn nothing of it).
        db.rollback()
        svc.customer_detail(db, p.person, customer_id)
        raise
    except KartablError as exc:
        return refused(db, p, exc, f"/customers/{customer_id}", kept)
    db.commit()
    return back(f"/customers/{customer_id}", done)


@router.post("/customers/{customer_id}/tags")
def add_tag(
    request: Request, customer_id: PathId, tag: Short = "",
    p: Principal = Depends(page_principal), db: Session = Depends(get_db),
) -> Response:
    return _change(request, db, p, customer_id, "tagged", {"tag": tag},
                   lambda: svc.add_tag(db, p.person, customer_id, tag))


@router.post("/customers/{customer_id}/tags/remove")
def remove_tag(
    request: Request, customer_id: PathId, tag: Short = "",
    p: Principal = Depends(page_principal), db: Session = Depends(get_db),
) -> Response:
    return _change(request, db, p, customer_id, "untagged", {},
                   lambda: svc.remove_tag(db, p.person, customer_id, tag))


@router.post("/customers/{customer_id}/link")
def link_identity(
    request: Request, customer_id: PathId, kind: Short = "", address: Short = "",
    p: Principal = Depends(page_principal), db: Session = Depends(get_db),
) -> Response:
    return _change(request, db, p, customer_id, "linked", {"kind": kind, "address": address},
                   lambda: svc.link(db, p.person, customer_id, kind, address))


@router.get("/customers/{customer_id}/merge", response_class=HTMLResponse)
def merge_page(
    request: Request, customer_id: PathId, q: str = "", into: str = "",
    p: Principal = Depends(page_principal), db: Session = Depends(get_db),
) -> Response:
    """Find the customer to merge into, then show what the merge would move. A GET: it
    only reads (the preview takes no lock and changes nothing)."""
    source = svc.customer_detail(db, p.person, customer_id)
    target_id = optional_id(into, "into")
    preview, target, error, status = None, None, "", 200
    if target_id is not None:
        try:
            preview = svc.merge_preview(db, p.person, source.id, target_id)
            target = svc.customer_detail(db, p.person, target_id)
        except NotFound:
            raise
        except KartablError as exc:  # out of scope, already merged, the same customer
            error = refusal_text(request_locale(request), refusal(exc))
            status = http_status(exc)
    flash = recall(db, p, failed_id(request))  # a refused merge, redirected here
    if flash is not None:
        error = refusal_text(request_locale(request), flash.refusal)
    q = q[: svc.MAX_QUERY]
    hits = [h for h in svc.search_customers(db, p.person, q, SEARCH_LIMIT) if h.id != source.id] \
        if q.strip() and target_id is None else []
    return render(request, "customer_merge.html", {
        "source": source, "target": target, "preview": preview, "q": q, "hits": hits,
        "error": error, "may_merge": svc.may_merge(p.person),
    }, status_code=status)


@router.post("/customers/{customer_id}/merge")
def merge(
    request: Request, customer_id: PathId, into: Short = "",
    p: Principal = Depends(page_principal), db: Session = Depends(get_db),
) -> Response:
    target_id = optional_id(into, "into")
    if target_id is None:
        return RedirectResponse(f"/customers/{customer_id}/merge", status_code=303)
    try:
        svc.merge(db, p.person, customer_id, target_id)
    except NotFound:
        raise
    except PermissionDenied:
        db.rollback()
        svc.customer_detail(db, p.person, customer_id)  # outside the scope: 404, as before
        raise  # the app's 403 page: nothing is written for a refused merge
    except KartablError as exc:
        return refused(db, p, exc, f"/customers/{customer_id}/merge")
    db.commit()
    return back(f"/customers/{target_id}", "merged")
