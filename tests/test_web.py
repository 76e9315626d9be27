"""The history browser through Starlette's TestClient, against real servers.

The history is tests/cli_history.py's (fixed times, fixed context ids, values
holding <script>, quotes and HTML), so each page's text is compared exactly.
"""

from __future__ import annotations

import html
import re

import pytest

from cli_history import ALICE, BOB, make_history

pytest.importorskip("starlette")
pytest.importorskip("jinja2")
from starlette.testclient import TestClient  # noqa: E402

from pghistory.web import create_app  # noqa: E402


@pytest.fixture
def history(conn, dsn, monkeypatch):
    make_history(conn)
    monkeypatch.setenv("PGTZ", "UTC")
    return dsn


@pytest.fixture
def client(history):
    return TestClient(create_app(history, allowed_hosts=["testserver"]))


@pytest.fixture
def writer(history):
    return TestClient(create_app(history, allow_writes=True, allowed_hosts=["testserver"]))


def text(page: str) -> str:
    """The text of a page's <main>, one line per block, as a reader sees it."""
    main = re.search(r"<main>(.*)</main>", page, re.S)
    assert main, page
    body = re.sub(r"<(tr|li|p|h1|h2|dt|nav|form|thead)\b[^>]*>", "\n", main.group(1).replace("\n", " "))
    body = re.sub(r"<option\b[^>]*>", " ", body)
    body = re.sub(r"<(td|th|dd)\b[^>]*>", " | ", body)
    body = re.sub(r"<[^>]+>", "", body)
    lines = (" ".join(html.unescape(line).split()) for line in body.splitlines())
    return "\n".join(line for line in lines if line.strip(" |"))


def rows(page: str) -> list[str]:
    return [line for line in text(page).splitlines() if line.startswith("| 2026-")]


TIMELINE = [
    "| 2026-11-01 10:05:00+00:00 | delete | public.orders 2 | removed | url=/orders/2/cancel user=alice",
    "| 2026-11-01 10:04:00+00:00 | update | public.orders 1 | amount: 10 → 12.5 |",
    '| 2026-11-01 10:03:30+00:00 | update | public.customers 1 | name: "Alice <script>alert(1)</script>" → '
    '"Alice \\"A.\\" O\'Hara" | reason=payment <b>received</b> user=bob',
    '| 2026-11-01 10:03:00+00:00 | update | public.orders 1 | status: "new" → "paid" | reason=payment <b>received</b> user=bob',
    "| 2026-11-01 10:02:00+00:00 | insert | public.orders 2 | created | url=/orders/2/cancel user=alice",
    "| 2026-11-01 10:01:00+00:00 | insert | public.orders 1 | created | url=/orders/2/cancel user=alice",
    '| 2026-11-01 10:00:30+00:00 | insert | public.customers 1 | created | url=/checkout?a=1&b="2" user=alice',
]


def test_timeline_lists_every_event_newest_first(client):
    response = client.get("/")
    assert response.status_code == 200
    assert response.headers["content-security-policy"].startswith("default-src 'none'")
    assert text(response.text).splitlines()[:3] == [
        "Timeline", "table every table public.customers public.orders label since until context = Filter",
        "| time | event | object | changes | context"]
    assert rows(response.text) == TIMELINE


@pytest.mark.parametrize("query, expected", [
    ("table=public.customers_event", [2, 6]),
    ("table=orders", [0, 1, 3, 4, 5]),
    ("label=insert", [4, 5, 6]),
    ("since=2026-11-01+10:03%2B00&until=2026-11-01+10:05%2B00", [1, 2, 3]),
    ("key=user&value=bob", [2, 3]),
    ("key=user&value=alice&label=delete", [0]),
    ("since=2+hours+ago", []),
])
def test_timeline_filters(client, query, expected):
    response = client.get(f"/?{query}")
    assert response.status_code == 200
    assert rows(response.text) == [TIMELINE[i] for i in expected]


def test_timeline_pages_by_keyset_and_every_event_shows_once(client):
    seen, url, pages = [], "/?n=3", 0
    while url:
        response = client.get(url)
        assert response.status_code == 200
        seen += rows(response.text)
        found = re.search(r'<a rel="next" href="([^"]+)"', response.text)
        url = html.unescape(found.group(1)) if found else None
        pages += 1
    assert (pages, seen) == (3, TIMELINE)
    second = client.get("/?n=3&before=public.customers_event:2,public.orders_event:4")
    assert rows(second.text) == TIMELINE[3:6]


def test_object_page_is_its_history_with_diffs_side_by_side(client):
    response = client.get("/object?table=public.orders&id=1")
    assert response.status_code == 200
    assert text(response.text) == "\n".join([
        "public.orders 1",
        "2026-11-01 10:04:00+00:00 update",
        "| column | before | after",
        "| amount | 10 | 12.5",
        "2026-11-01 10:03:00+00:00 update reason=payment <b>received</b> user=bob",
        "| column | before | after",
        '| status | "new" | "paid"',
        "2026-11-01 10:01:00+00:00 insert url=/orders/2/cancel user=alice",
        "| column | before | after",
        "| amount | | 10",
        "| customer_id | | 1",
        "| id | | 1",
        '| status | | "new"',
    ])


def test_context_page_is_what_one_context_did_in_order(client):
    response = client.get(f"/context/{BOB}")
    assert response.status_code == 200
    assert text(response.text) == "\n".join([
        f"Context {BOB}",
        "reason | payment <b>received</b>",
        "user | bob",
        "2026-11-01 10:03:00+00:00 update public.orders 1",
        "| column | before | after",
        '| status | "new" | "paid"',
        "2026-11-01 10:03:30+00:00 update public.customers 1",
        "| column | before | after",
        '| name | "Alice <script>alert(1)</script>" | "Alice \\"A.\\" O\'Hara"',
    ])


def test_tables_page_says_what_is_tracked_and_how(client):
    response = client.get("/tables")
    assert response.status_code == 200
    assert text(response.text) == "\n".join([
        "Tracked tables",
        "| table | event table | events | labels | columns | context | level | append-only | health",
        "| public.customers | public.customers_event | 2 | insert, update, delete, truncate | id, name | json | statement "
        "| yes | ok",
        "| public.orders | public.orders_event | 5 | insert, update, delete, truncate | id, status, amount, customer_id "
        "| fk | statement | yes | ok",
    ])


def test_tables_page_reports_the_health_pghistory_status_reports(client, conn):
    # trigger functions out of step with the table: what `pghistory status` flags, with what to run
    conn.execute("COMMENT ON FUNCTION pghistory.\"public.orders/update\"() IS 'stale'")
    [(detail, action)] = conn.execute("""
        SELECT detail, action FROM pghistory.status()
         WHERE object = 'public.orders' AND aspect = 'trigger functions' AND NOT ok""").fetchall()
    page = text(client.get("/tables").text)
    assert f"| fk | statement | yes | trigger functions: {detail} ({action})" in page
    assert "| json | statement | yes | ok" in page


def test_event_page_shows_the_event_and_its_snapshot_without_a_revert_when_read_only(client):
    response = client.get("/event?slug=public.orders_event:3")
    assert response.status_code == 200
    assert text(response.text) == "\n".join([
        "public.orders_event:3",
        "2026-11-01 10:03:00+00:00 update of public.orders 1 reason=payment <b>received</b> user=bob",
        "| column | before | after",
        '| status | "new" | "paid"',
        "Snapshot",
        "| amount | 10",
        "| customer_id | 1",
        "| id | 1",
        '| status | "paid"',
    ])
    assert "revert" not in response.text.lower()


def test_every_value_is_escaped(client):
    for url in ("/", "/object?table=public.customers&id=1", f"/context/{ALICE}", f"/context/{BOB}",
                "/event?slug=public.customers_event:2", "/tables", "/?label=%3Cscript%3E", "/object?table=%3Cb%3E&id=1"):
        page = client.get(url).text
        assert "<script>" not in page and "<b>" not in page, url
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in client.get("/").text
    assert 'value="&lt;script&gt;"' in client.get("/?label=%3Cscript%3E").text


@pytest.mark.parametrize("url, status, message", [
    ("/object?table=nope&id=1", 400, "no table nope name a tracked table; SELECT * FROM pghistory.tracking lists them"),
    ("/object?table=orders&id=x", 400, 'invalid input syntax for type integer: "x"'),
    ("/object?table=orders&id=99", 404, "no history of orders 99 check the table and the key"),
    ("/context/nope", 404, "not a context id a context id is a uuid"),
    ("/?since=blah", 400, "cannot read since 'blah' as a time give a date (2026-11-01), a timestamp "
                          "(2026-11-01 12:00+00) or a relative time (2 hours ago, yesterday)"),
    ("/?before=junk", 400, "not a position in history: 'junk' follow the links of the previous page"),
    ("/event?slug=public.orders_event:99", 404, "no event public.orders_event:99 follow a link from the timeline"),
])
def test_bad_requests_get_an_error_page(client, url, status, message):
    response = client.get(url)
    assert response.status_code == status
    assert " ".join(text(response.text).splitlines()[1:]) == message


def test_serves_nothing_outside_its_pages(client):
    assert client.get("/static/../app.py").status_code == 404
    assert client.get("/static/templates/base.html").status_code == 404
    assert client.get("/etc/passwd").status_code == 404
    assert client.get("/static/style.css").headers["content-type"].startswith("text/css")
    assert client.get("/", headers={"host": "evil.example"}).status_code == 400  # DNS rebinding


def test_read_only_refuses_reverts(client, conn):
    response = client.post("/revert", data={"slug": "public.orders_event:1", "token": "x"})
    assert response.status_code == 403
    assert text(response.text) == "Error\nthis history browser is read-only\n" \
                                  "start it with pghistory serve --allow-writes to offer reverts"
    assert conn.execute("SELECT count(*) FROM orders_event").fetchone() == (5,)


def test_revert_asks_for_confirmation_and_needs_the_csrf_token(writer, conn):
    page = writer.get("/event?slug=public.orders_event:1").text
    assert '<a class="button" href="/event?slug=public.orders_event%3A1&amp;revert=1">' in page
    confirm = writer.get("/event?slug=public.orders_event:1&revert=1").text
    token = re.search(r'name="token" value="([0-9a-f]{64})"', confirm).group(1)
    for data, headers in [({"slug": "public.orders_event:1"}, {}),
                          ({"slug": "public.orders_event:1", "token": "0" * 64}, {}),
                          ({"slug": "public.orders_event:3", "token": token}, {}),
                          ({"slug": "public.orders_event:1", "token": token}, {"origin": "https://evil.example"})]:
        refused = writer.post("/revert", data=data, headers=headers)
        assert refused.status_code == 403, data
        assert text(refused.text).splitlines()[1].startswith("refused: ")
    assert conn.execute("SELECT count(*) FROM orders_event").fetchone() == (5,)
    done = writer.post("/revert", data={"slug": "public.orders_event:1", "token": token}, follow_redirects=False)
    assert (done.status_code, done.headers["location"]) == (303, "/object?table=public.orders&id=1&reverted=6")
    assert conn.execute("SELECT id, status, amount FROM orders WHERE id = 1").fetchone() == (1, "new", 10)
    assert conn.execute("SELECT pgh_id, pgh_label FROM orders_event WHERE pgh_id = 6").fetchone() == (6, "update")
