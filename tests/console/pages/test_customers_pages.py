"""The customer pages: search in any digit form, tags, linking, the previewed merge and
its permission."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from kartabl.models import Conversation, Customer, Event, Identity, Person
from tests.console.pages.conftest import World, post_refused, sign_in

Db = sessionmaker[Session]


def customer(db: Db, cid: int) -> Customer:
    with db() as s:
        found = s.get(Customer, cid)
        assert found is not None
        s.expunge(found)
        return found


def phone_of(db: Db, customer_id: int) -> str:
    with db() as s:
        return s.scalars(select(Identity.address)
                         .where(Identity.customer_id == customer_id)).one()


def test_search_by_phone_in_persian_digits(client: TestClient, world: World, db: Db) -> None:
    phone = phone_of(db, world.customer_support)  # +98912xxxxxxx
    local = "0" + phone.removeprefix("+98")
    persian = local.translate(str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹"))
    sign_in(client, "ali")
    page = client.get("/customers", params={"q": persian}).text
    assert f'data-customer-id="{world.customer_support}"' in page
    assert 'id="customer-results"' in page
    none = client.get("/customers", params={"q": "no such person at all"}).text
    assert 'id="customer-none"' in none


def test_customer_page_lists_identities_and_conversations(client: TestClient, world: World,
                                                          db: Db) -> None:
    sign_in(client, "maryam")
    page = client.get(f"/customers/{world.customer_support}").text
    assert phone_of(db, world.customer_support) in page
    assert f'href="/conversations/{world.conv_support}"' in page and "support-subject" in page


def test_add_and_remove_a_tag(client: TestClient, world: World, db: Db) -> None:
    csrf = sign_in(client, "ali")
    url = f"/customers/{world.customer_support}"
    r = client.post(f"{url}/tags", data={"csrf_token": csrf, "tag": "VIP"},
                    follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == f"{url}?done=tagged"
    assert customer(db, world.customer_support).tags == ["vip"]
    assert 'class="badge tag" dir="auto">vip</span>' in client.get(url).text
    r = client.post(f"{url}/tags/remove", data={"csrf_token": csrf, "tag": "vip"},
                    follow_redirects=False)
    assert r.status_code == 303 and customer(db, world.customer_support).tags == []
    post_refused(client, f"{url}/tags", {"csrf_token": csrf, "tag": "=cmd()"}, url)
    assert customer(db, world.customer_support).tags == []


def test_coordinator_links_an_identity(client: TestClient, world: World, db: Db) -> None:
    csrf = sign_in(client, "maryam")
    url = f"/customers/{world.customer_support}"
    assert 'id="link-form"' in client.get(url).text
    r = client.post(f"{url}/link", data={"csrf_token": csrf, "kind": "email",
                                         "address": "Narges@Example.IR"},
                    follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == f"{url}?done=linked"
    with db() as s:
        linked = s.scalars(select(Identity).where(Identity.kind == "email",
                                                  Identity.address == "narges@example.ir")).one()
        assert linked.customer_id == world.customer_support


def test_agent_may_not_link(client: TestClient, world: World, db: Db) -> None:
    csrf = sign_in(client, "ali")
    url = f"/customers/{world.customer_support}"
    assert 'id="link-form"' not in client.get(url).text
    r = client.post(f"{url}/link", data={"csrf_token": csrf, "kind": "email",
                                         "address": "x@example.ir"})
    assert r.status_code == 403
    with db() as s:
        assert s.scalars(select(Identity).where(Identity.kind == "email",
                                                Identity.address == "x@example.ir")).all() == []


def test_merge_is_previewed_then_posted(client: TestClient, world: World, db: Db) -> None:
    with db() as s:
        boss = s.get(Person, world.coord)
        assert boss is not None
        boss.can_merge = True
        s.commit()
    csrf = sign_in(client, "maryam")
    source, target = world.customer_support, world.customer_sales
    page = client.get(f"/customers/{source}").text
    assert 'id="merge-search-form"' in page
    found = client.get(f"/customers/{source}/merge", params={"q": phone_of(db, target)}).text
    assert f'href="/customers/{source}/merge?into={target}"' in found
    preview = client.get(f"/customers/{source}/merge", params={"into": str(target)}).text
    assert 'id="merge-preview"' in preview and 'id="merge-button"' in preview
    assert "Moves 1 conversations and 1 messages." in preview
    assert phone_of(db, source) in preview  # the identity that will move
    assert customer(db, source).merged_into_id is None  # the preview changed nothing
    r = client.post(f"/customers/{source}/merge", data={"csrf_token": csrf, "into": str(target)},
                    follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == f"/customers/{target}?done=merged"
    assert customer(db, source).merged_into_id == target
    with db() as s:
        assert s.scalars(select(Event.kind).where(Event.kind.like("customer.merge%"))).all()
    # The merged customer's page now leads to the survivor.
    moved = client.get(f"/customers/{source}", follow_redirects=False)
    assert moved.status_code == 303 and moved.headers["location"] == f"/customers/{target}"


def test_merge_needs_its_permission(client: TestClient, world: World, db: Db) -> None:
    csrf = sign_in(client, "maryam")  # a coordinator without the merge right
    source, target = world.customer_support, world.customer_sales
    assert 'id="merge-search-form"' not in client.get(f"/customers/{source}").text
    preview = client.get(f"/customers/{source}/merge", params={"into": str(target)}).text
    assert 'id="merge-not-allowed"' in preview and 'id="merge-form"' not in preview
    r = client.post(f"/customers/{source}/merge", data={"csrf_token": csrf, "into": str(target)})
    assert r.status_code == 403 and "merge permission" in r.text
    assert customer(db, source).merged_into_id is None


def test_merge_out_of_scope_is_refused(client: TestClient, world: World, db: Db) -> None:
    """An agent with the merge right still cannot move a customer whose history they
    cannot all see."""
    from tests import factories as f

    with db() as s:
        ali = s.get(Person, world.ali)
        assert ali is not None
        ali.can_merge = True
        support, sales = s.get(f.Team, world.support), s.get(f.Team, world.sales)
        mine = f.conversation(s, team=support)
        # This customer has one conversation in support and one in sales.
        shared = f.conversation(s, team=support)
        assert sales is not None
        other = Conversation(customer_id=shared.customer_id, channel=shared.channel,
                             team_id=sales.id, subject="in sales")
        s.add(other)
        s.flush()
        f.inbound(s, other)
        s.commit()
        mine_customer, shared_customer = mine.customer_id, shared.customer_id
    csrf = sign_in(client, "ali")
    preview = client.get(f"/customers/{mine_customer}/merge",
                         params={"into": str(shared_customer)})
    assert preview.status_code == 403 and "گفتگوی بیرون از تیم‌های شما دارد" in preview.text
    r = client.post(f"/customers/{mine_customer}/merge",
                    data={"csrf_token": csrf, "into": str(shared_customer)})
    assert r.status_code == 403
    assert customer(db, mine_customer).merged_into_id is None

