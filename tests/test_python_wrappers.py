"""The Python wrappers of the SQL API: install, track, untrack, create_event,
events, revert; trackers as Python objects; table names quoted safely.

Every test of a wrapper runs on both connection kinds (the ``twin`` fixture,
see python_twins): ``pghistory.x`` on a Connection, ``pghistory.aio.x`` on an
AsyncConnection; ``conn`` (sync, autocommit) sets up and observes."""

from __future__ import annotations

import asyncio
import datetime as dt
import inspect
import uuid
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.pq import TransactionStatus

import pghistory as pgh
from python_helpers import history, make_orders
from python_twins import twin, twin_connect  # noqa: F401 (fixtures)


def tracking(conn: psycopg.Connection[Any], table: str) -> tuple[Any, ...]:
    row = conn.execute(
        "SELECT event_table::text, labels, fields, context, level, append_only"
        " FROM pghistory.tracking WHERE tracked_table = %s::regclass",
        [table],
    ).fetchone()
    assert row is not None, f"{table} is not tracked"
    return tuple(row)


# -- install -----------------------------------------------------------------------


def test_install_creates_the_extension_once_and_returns_its_version(pg, empty_db):
    with pg.connect(empty_db) as c:
        assert pgh.install(c) == pgh.__version__
        assert pgh.install(c) == pgh.__version__  # IF NOT EXISTS
        assert c.execute("SELECT count(*) FROM pg_extension WHERE extname = 'pghistory'").fetchone() == (1,)


def test_install_runs_in_the_callers_transaction(pg, empty_db):
    with pg.connect(empty_db, autocommit=False) as c:
        pgh.install(c)
        c.rollback()
        assert c.execute("SELECT count(*) FROM pg_extension WHERE extname = 'pghistory'").fetchone() == (0,)
        pgh.install(c)
        c.commit()
    with pg.connect(empty_db) as c:
        assert c.execute("SELECT extversion FROM pg_extension WHERE extname = 'pghistory'").fetchone() == (pgh.__version__,)


@pytest.mark.parametrize("autocommit", [True, False], ids=["autocommit", "transaction"])
def test_install_without_extension_files_says_what_to_do(pg, empty_db, tmp_path, autocommit):
    if pg.major < 18:
        pytest.skip("hiding the installed extension files needs extension_control_path (PostgreSQL 18)")
    with pg.connect(empty_db, autocommit=autocommit) as c:
        c.execute("SET extension_control_path = '/nonexistent/pghistory-test'")
        if not autocommit:
            c.commit()
        with pytest.raises(pgh.ExtensionNotAvailable, match=r"not installed on this PostgreSQL server: install its files on the database host \(`make install`") as info:
            pgh.install(c, method="extension")  # "auto" would go by the plain script (tests/test_install.py)
        assert isinstance(info.value.__cause__, psycopg.Error)
        assert c.info.transaction_status == TransactionStatus.IDLE  # usable at once
        assert c.execute("SELECT 1").fetchone() == (1,)


# -- track / untrack ---------------------------------------------------------------


def test_track_defaults_are_the_sql_defaults(conn, twin):
    conn.execute("CREATE TABLE orders (id int PRIMARY KEY, status text)")
    assert twin.track("orders") == "orders_event"
    assert tracking(conn, "orders") == (
        "orders_event", ["insert", "update", "delete", "truncate"], ["id", "status"], "fk", "statement", True
    )


def test_track_passes_every_argument(conn, twin):
    conn.execute("CREATE SCHEMA audit")
    conn.execute(
        "CREATE TABLE orders (id int PRIMARY KEY, status text, amount int, note text, updated_at timestamptz)"
    )
    event_table = twin.track(
        "public.orders",
        trackers=[
            pgh.InsertEvent(),
            pgh.UpdateEvent("status_changed", changed=["status"]),
            pgh.UpdateEvent("big_amount", condition="NEW.amount > 100"),
            pgh.DeleteEvent("removed"),
            pgh.ManualEvent("checkout"),
            pgh.TruncateEvent("emptied"),
        ],
        fields=["id", "status", "amount"],
        event_table="audit.orders_history",
        context="json",
        level="row",
        append_only=False,
    )
    assert event_table == "audit.orders_history"
    assert tracking(conn, "orders") == (
        "audit.orders_history",
        ["insert", "status_changed", "big_amount", "removed", "checkout", "emptied"],
        ["id", "status", "amount"],
        "json",
        "row",
        False,
    )
    with twin.context(user="alice") as ctx:
        twin.execute("INSERT INTO orders VALUES (1, 'new', 10, 'x', now())")
        twin.execute("UPDATE orders SET note = 'not tracked'")
        twin.execute("UPDATE orders SET status = 'paid'")
        twin.execute("UPDATE orders SET amount = 500")
        twin.execute("DELETE FROM orders")
    rows = conn.execute(
        "SELECT pgh_label, id, status, amount, pgh_context_id, pgh_context FROM audit.orders_history ORDER BY pgh_id"
    ).fetchall()
    assert rows == [
        ("insert", 1, "new", 10, ctx.id, {"user": "alice"}),
        ("status_changed", 1, "paid", 10, ctx.id, {"user": "alice"}),
        ("big_amount", 1, "paid", 500, ctx.id, {"user": "alice"}),
        ("removed", 1, "paid", 500, ctx.id, {"user": "alice"}),
    ]
    conn.execute("UPDATE audit.orders_history SET status = 'edited'")  # append_only=False


def test_track_exclude(conn, twin):
    conn.execute("CREATE TABLE orders (id int PRIMARY KEY, status text, updated_at timestamptz)")
    twin.track("orders", exclude=["updated_at"])
    assert tracking(conn, "orders")[2] == ["id", "status"]


def test_update_event_snapshot_old_stores_the_row_before(conn, twin):
    conn.execute("CREATE TABLE orders (id int PRIMARY KEY, status text)")
    twin.track("orders", trackers=[pgh.UpdateEvent("before", snapshot="old")])
    conn.execute("INSERT INTO orders VALUES (1, 'new')")
    conn.execute("UPDATE orders SET status = 'paid'")
    assert history(conn) == [("before", 1, "new", None)]


def test_track_again_reconfigures(conn, twin):
    make_orders(conn)
    assert twin.track("orders", trackers=[pgh.InsertEvent("created")]) == "orders_event"
    assert tracking(conn, "orders")[1] == ["created"]


@pytest.mark.parametrize(
    "name",
    ["My Schema.Order Lines", sql.Identifier("My Schema", "Order Lines")],
    ids=["str", "Identifier"],
)
def test_names_are_quoted(conn, twin, name):
    conn.execute('CREATE SCHEMA "My Schema"')
    conn.execute('CREATE TABLE "My Schema"."Order Lines" (id int PRIMARY KEY, "Status" text)')
    event_table = twin.track(name, event_table=sql.Identifier("My Schema", "Line History"))
    assert event_table == '"My Schema"."Line History"'
    conn.execute('INSERT INTO "My Schema"."Order Lines" VALUES (1, \'new\')')
    eid = twin.create_event(name, 1, "insert")
    rows = conn.execute('SELECT pgh_id, pgh_label, "Status" FROM "My Schema"."Line History" ORDER BY pgh_id').fetchall()
    assert rows == [(eid - 1, "insert", "new"), (eid, "insert", "new")]
    twin.untrack(name, drop_events=True)
    assert conn.execute("""SELECT to_regclass('"My Schema"."Line History"')""").fetchone() == (None,)


def test_a_name_is_never_sql(conn, twin):
    make_orders(conn)
    with pytest.raises(psycopg.errors.UndefinedTable, match='relation "orders; DROP TABLE orders; --" does not exist'):
        twin.track("orders; DROP TABLE orders; --")
    with pytest.raises(psycopg.errors.UndefinedTable):
        twin.track('x"; DROP TABLE orders; --')
    assert conn.execute("SELECT to_regclass('orders')::text").fetchone() == ("orders",)


@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda t: t.track("a.b.c"), ValueError, r"'a.b.c' is not a table name: use 'table' or 'schema.table'"),
        (lambda t: t.track(""), ValueError, "is not a table name"),
        (lambda t: t.track(".orders"), ValueError, "is not a table name"),
        (lambda t: t.track(42), TypeError, "a table name must be a str such as 'schema.table' or a psycopg.sql.Identifier, not int"),
        (lambda t: t.track("orders", fields="status"), TypeError, r"fields must be a list, such as \['status'\], not a str"),
        (lambda t: t.track("orders", trackers=[object()]), TypeError, "trackers must be pghistory.InsertEvent"),
        (lambda t: t.track("orders", trackers=pgh.InsertEvent()), TypeError, "trackers must be a list"),
        (lambda t: t.track("orders", event_table="a.b.c"), ValueError, "is not a event table name"),
        (lambda t: pgh.UpdateEvent(changed="status"), TypeError, r"changed must be a list of column names, such as \['status'\]"),
        (lambda t: t.create_event("orders", 1.5, "insert"), TypeError, "obj_id must be an int, str or UUID, not float"),
        (lambda t: t.events(obj_id=1), ValueError, "obj_id needs a table"),
        (lambda t: t.events("orders", labels="update"), TypeError, "labels must be a list"),
        (lambda t: t.events(order="newest"), ValueError, "order must be 'asc' or 'desc', not 'newest'"),
        (lambda t: t.events(limit=-1), ValueError, "limit must be an int of 0 or more, not -1"),
        (lambda t: t.events(limit=True), ValueError, "limit must be an int of 0 or more, not True"),
        (lambda t: t.events(after=1), TypeError, r"after must be a pghistory.Event \(the last one of the previous page\), not int"),
        (lambda t: t.events(before="x"), TypeError, "before must be a pghistory.Event"),
    ],
    ids=["3 parts", "empty", "empty schema", "int", "fields str", "tracker object", "trackers not list",
         "event_table", "changed str", "obj_id float", "obj_id without table", "labels str", "order",
         "negative limit", "bool limit", "after int", "before str"],
)
def test_bad_arguments_are_refused_before_anything_is_sent(twin_connect, call, error, message):
    subject = twin_connect(autocommit=False)
    with pytest.raises(error, match=message):
        call(subject)
    assert subject.conn.info.transaction_status == TransactionStatus.IDLE


def test_each_twin_refuses_the_other_connection_kind_and_names_the_right_one(conn, dsn):
    make_orders(conn)
    with pytest.raises(TypeError) as info:
        pgh.track("dbname=x", "orders")
    assert str(info.value) == "pghistory needs a psycopg.Connection or psycopg.AsyncConnection, not builtins.str"
    with pytest.raises(TypeError) as info:
        asyncio.run(pgh.aio.events(conn))
    assert str(info.value) == (
        "pghistory.aio.events() takes a psycopg.AsyncConnection; for a Connection, use pghistory.events()"
    )

    async def main() -> None:
        async with await psycopg.AsyncConnection.connect(dsn) as aconn:
            for call in (lambda: pgh.track(aconn, "orders"), lambda: pgh.events(aconn), lambda: pgh.reset(aconn)):
                with pytest.raises(TypeError) as info:
                    call()
                name = str(info.value).split("(")[0]
                assert str(info.value) == (
                    f"{name}() takes a psycopg.Connection; for an AsyncConnection, use await pghistory.aio.{name[10:]}()"
                )
            assert aconn.info.transaction_status == TransactionStatus.IDLE  # nothing was sent

    asyncio.run(main())
    assert history(conn) == []


def test_twins_share_one_core_and_its_docstring():
    for name in ("track", "untrack", "create_event", "events", "revert", "reset"):
        sync, aio = getattr(pgh, name), getattr(pgh.aio, name)
        assert (sync.__module__, sync.__name__, aio.__module__, aio.__name__) == ("pghistory", name, "pghistory.aio", name)
        assert sync.__wrapped__ is aio.__wrapped__
        assert sync.__doc__ == aio.__doc__ and sync.__doc__
        assert inspect.iscoroutinefunction(aio) and not inspect.iscoroutinefunction(sync)
        assert list(inspect.signature(sync).parameters)[0] == "conn"


def test_sql_errors_come_back_unchanged(conn, twin):
    make_orders(conn)
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="changed is empty"):
        twin.track("orders", trackers=[pgh.UpdateEvent(changed=[])])


def test_untrack_keeps_history_unless_asked(conn, twin):
    make_orders(conn)
    conn.execute("INSERT INTO orders VALUES (1, 'new')")
    assert twin.untrack("orders") is None
    conn.execute("INSERT INTO orders VALUES (2, 'untracked')")
    assert history(conn) == [("insert", 1, "new", None)]
    assert conn.execute("SELECT count(*) FROM pghistory.tracking").fetchone() == (0,)

    twin.track("orders")
    twin.untrack("orders", drop_events=True)
    assert conn.execute("SELECT to_regclass('orders_event')").fetchone() == (None,)


# -- create_event ------------------------------------------------------------------


def test_create_event_snapshots_the_row_in_the_active_context(conn, twin):
    make_orders(conn, trackers=[pgh.InsertEvent(), pgh.ManualEvent("checkout")])
    conn.execute("INSERT INTO orders VALUES (1, 'new'), (2, 'other')")
    with twin.context(user="alice") as ctx:
        first = twin.create_event("orders", 1, "checkout")
        second = twin.create_event("orders", "2", "checkout")
    assert isinstance(first, int) and second == first + 1
    assert conn.execute(
        "SELECT pgh_id, pgh_label, id, status, pgh_context_id FROM orders_event WHERE pgh_label = 'checkout' ORDER BY pgh_id"
    ).fetchall() == [(first, "checkout", 1, "new", ctx.id), (second, "checkout", 2, "other", ctx.id)]


def test_create_event_with_a_uuid_key(conn, twin):
    key = uuid.uuid4()
    conn.execute("CREATE TABLE docs (id uuid PRIMARY KEY, title text)")
    pgh.track(conn, "docs", trackers=[pgh.ManualEvent("seen")])
    conn.execute("INSERT INTO docs VALUES (%s, 'readme')", [key])
    pgh_id = twin.create_event("docs", key, "seen")
    assert conn.execute("SELECT pgh_id, pgh_obj_id, title FROM docs_event").fetchall() == [(pgh_id, key, "readme")]


def test_create_event_with_an_unknown_label_names_the_labels(conn, twin):
    make_orders(conn, trackers=[pgh.InsertEvent(), pgh.ManualEvent("checkout")])
    conn.execute("INSERT INTO orders VALUES (1, 'new')")
    with pytest.raises(psycopg.Error, match="checkout") as info:
        twin.create_event("orders", 1, "nope")
    assert "nope" in str(info.value)


# -- events / revert --------------------------------------------------------------


def test_events_returns_typed_rows_oldest_first(conn, twin):
    make_orders(conn)
    before = conn.execute("SELECT clock_timestamp()").fetchone()[0]
    with twin.context(user="alice") as ctx:
        twin.execute("INSERT INTO orders VALUES (1, 'new'), (2, 'other')")
        twin.execute("UPDATE orders SET status = 'paid' WHERE id = 1")
    twin.execute("DELETE FROM orders WHERE id = 1")

    evs = twin.events("orders", obj_id=1)
    assert [type(ev) for ev in evs] == [pgh.Event] * 3
    assert [(ev.pgh_label, ev.pgh_obj_id, ev.pgh_data, ev.pgh_diff, ev.pgh_context_id, ev.pgh_context) for ev in evs] == [
        ("insert", "1", {"id": 1, "status": "new"}, None, ctx.id, {"user": "alice"}),
        ("update", "1", {"id": 1, "status": "paid"}, {"status": ["new", "paid"]}, ctx.id, {"user": "alice"}),
        ("delete", "1", {"id": 1, "status": "paid"}, {}, None, None),
    ]
    assert all(ev.pgh_obj_model == "public.orders" and ev.pgh_model == "public.orders_event" for ev in evs)
    assert all(isinstance(ev.pgh_created_at, dt.datetime) and ev.pgh_created_at >= before for ev in evs)
    assert [ev.pgh_id for ev in evs] == sorted(ev.pgh_id for ev in evs)

    assert [ev.pgh_obj_id for ev in twin.events("orders")] == ["1", "2", "1", "1"]
    assert [ev.pgh_label for ev in twin.events("orders", labels=["update", "delete"])] == ["update", "delete"]
    assert [ev.pgh_obj_id for ev in twin.events(context_id=ctx.id)] == ["1", "2", "1"]
    assert [ev.pgh_obj_id for ev in twin.events(context_id=str(ctx.id))] == ["1", "2", "1"]
    assert twin.events("orders", since=dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=1)) == []
    assert len(twin.events(until=dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=1))) == 4


@pytest.fixture
def two_tables(conn: psycopg.Connection[Any]) -> list[tuple[str, int]]:
    """orders and customers, tracked; six events, the first three in one
    transaction (one pgh_created_at), as (pgh_model, pgh_id), oldest first."""
    make_orders(conn)
    conn.execute("CREATE TABLE customers (id int PRIMARY KEY, name text)")
    pgh.track(conn, "customers")
    with conn.transaction():
        conn.execute("INSERT INTO orders VALUES (1, 'new'), (2, 'new')")
        conn.execute("INSERT INTO customers VALUES (1, 'alice')")
    conn.execute("UPDATE orders SET status = 'paid' WHERE id = 1")
    conn.execute("UPDATE customers SET name = 'alicia'")
    conn.execute("DELETE FROM orders WHERE id = 2")
    c, o = "public.customers_event", "public.orders_event"
    # one sequence numbers both tables: ties on pgh_created_at come in the order written
    return [(o, 1), (o, 2), (c, 3), (o, 4), (c, 5), (o, 6)]


def keys(evs: list[pgh.Event]) -> list[tuple[str, int]]:
    return [(ev.pgh_model, ev.pgh_id) for ev in evs]


def test_events_order_and_limit(twin, two_tables):
    assert keys(twin.events()) == two_tables
    assert keys(twin.events(order="asc")) == two_tables
    assert keys(twin.events(order="desc")) == two_tables[::-1]
    assert keys(twin.events(order="desc", limit=2)) == [two_tables[5], two_tables[4]]
    assert keys(twin.events(limit=1)) == [two_tables[0]]
    assert twin.events(limit=0) == []
    assert keys(twin.events("orders", order="desc", limit=3)) == [("public.orders_event", i) for i in (6, 4, 2)]


@pytest.mark.parametrize("order, cursor, size", [("desc", "before", 2), ("asc", "after", 4), ("asc", "after", 1)])
def test_events_keyset_pages_cover_the_history_once(twin, two_tables, order, cursor, size):
    pages = [twin.events(order=order, limit=size)]
    while pages[-1]:
        pages.append(twin.events(order=order, limit=size, **{cursor: pages[-1][-1]}))
    assert [len(page) for page in pages] == [size] * (6 // size) + ([6 % size] if 6 % size else []) + [0]
    assert [key for page in pages for key in keys(page)] == (two_tables[::-1] if order == "desc" else two_tables)


def test_events_cursors_combine_with_filters_and_each_other(twin, two_tables):
    every = twin.events()
    o1, o2, o4, o6 = every[0], every[1], every[3], every[5]
    assert keys(twin.events("orders", before=o4)) == two_tables[0:2]  # its transaction's ties, in order
    assert keys(twin.events("orders", order="desc", before=o4)) == two_tables[1::-1]
    assert keys(twin.events(after=o2, before=o6)) == two_tables[2:5]
    assert keys(twin.events(after=o2, labels=["update"])) == two_tables[3:5]
    assert keys(twin.events("orders", obj_id=1, after=o1)) == [two_tables[3]]
    assert twin.events(after=o6) == [] and twin.events(before=o1) == []
    # a cursor's time is pushed down as since/until; an explicit bound still applies
    assert keys(twin.events(since=o4.pgh_created_at, before=o6)) == two_tables[3:5]
    assert keys(twin.events(until=o4.pgh_created_at, after=o1)) == two_tables[1:3]


def test_readme_paging(conn, two_tables):
    shown: list[pgh.Event] = []
    show = shown.extend
    # as in README.md, section Python, "Reading history" (with pages of 2)
    page = pgh.events(conn, "orders", order="desc", limit=2)
    while page:
        show(page)
        page = pgh.events(conn, "orders", order="desc", limit=2, before=page[-1])
    assert keys(shown) == [("public.orders_event", i) for i in (6, 4, 2, 1)]


def test_events_numbers_come_back_exact(conn, twin):
    conn.execute("CREATE TABLE prices (id int PRIMARY KEY, amount numeric(10,2), ratio float8, big numeric, n bigint)")
    pgh.track(conn, "prices")
    conn.execute("INSERT INTO prices VALUES (1, 42.00, 0.1, 12345678901234567890.123456789, 9007199254740993)")
    conn.execute("UPDATE prices SET amount = 43.10")
    insert, update = twin.events("prices")
    assert insert.pgh_data == {
        "id": 1, "amount": Decimal("42.00"), "ratio": Decimal("0.1"),
        "big": Decimal("12345678901234567890.123456789"), "n": 9007199254740993,
    }
    assert str(insert.pgh_data["amount"]) == "42.00"  # the scale as stored
    assert update.pgh_diff == {"amount": [Decimal("42.00"), Decimal("43.10")]}
    assert [type(v) for v in update.pgh_diff["amount"]] == [Decimal, Decimal]
    # round trip: the snapshot's values are the table's own
    assert conn.execute("SELECT amount, big, n FROM prices").fetchone() == (
        update.pgh_data["amount"], update.pgh_data["big"], update.pgh_data["n"])


def test_revert_puts_a_row_back(conn, twin):
    make_orders(conn)
    conn.execute("INSERT INTO orders VALUES (1, 'new')")
    first = conn.execute("SELECT pgh_id FROM orders_event").fetchone()[0]
    conn.execute("UPDATE orders SET status = 'paid'")
    assert twin.revert("orders_event", first) == first + 2  # the update was first + 1
    assert conn.execute("SELECT id, status FROM orders").fetchall() == [(1, "new")]
    assert twin.revert("orders_event", first) is None  # the row already matches: nothing written
    conn.execute("DELETE FROM orders")
    assert twin.revert("public.orders_event", first) == first + 4
    assert conn.execute("SELECT id, status FROM orders").fetchall() == [(1, "new")]
    assert history(conn) == [
        ("insert", 1, "new", None), ("update", 1, "paid", None), ("update", 1, "new", None),
        ("delete", 1, "new", None), ("insert", 1, "new", None),
    ]


# -- the README's tour ------------------------------------------------------------------


def test_readme_tour(conn, dsn, capsys):
    conn.execute("CREATE TABLE orders (id int PRIMARY KEY, status text)")
    conn.execute("INSERT INTO orders VALUES (1, 'new')")

    # as in README.md, section Python
    with psycopg.connect(dsn) as conn2:
        pgh.install(conn2)
        pgh.track(conn2, "orders", trackers=[
            pgh.InsertEvent(),
            pgh.UpdateEvent("status_changed", changed=["status"]),
            pgh.DeleteEvent(),
            pgh.ManualEvent("checkout"),
        ])
        with pgh.context(conn2, user="alice", url="/checkout"):
            conn2.execute("UPDATE orders SET status = 'paid' WHERE id = 1")
            with pgh.context(conn2, reason="refund"):   # same context, metadata merged
                pgh.create_event(conn2, "orders", 1, "checkout")
        for ev in pgh.events(conn2, "orders", obj_id=1):
            print(ev.pgh_label, ev.pgh_diff, ev.pgh_context)

    # one context row for both events: its metadata is the merged one
    assert capsys.readouterr().out.splitlines() == [
        "status_changed None {'url': '/checkout', 'user': 'alice', 'reason': 'refund'}",
        "checkout {} {'url': '/checkout', 'user': 'alice', 'reason': 'refund'}",
    ]
