"""The Python wrappers of the SQL API: install, track, untrack, create_event,
events, revert; trackers as Python objects; table names quoted safely."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.pq import TransactionStatus

import pghistory as pgh
from python_helpers import history, make_orders


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
            pgh.install(c)
        assert isinstance(info.value.__cause__, psycopg.Error)
        assert c.info.transaction_status == TransactionStatus.IDLE  # usable at once
        assert c.execute("SELECT 1").fetchone() == (1,)


# -- track / untrack ---------------------------------------------------------------


def test_track_defaults_are_the_sql_defaults(conn):
    conn.execute("CREATE TABLE orders (id int PRIMARY KEY, status text)")
    assert pgh.track(conn, "orders") == "orders_event"
    assert tracking(conn, "orders") == (
        "orders_event", ["insert", "update", "delete", "truncate"], ["id", "status"], "fk", "statement", True
    )


def test_track_passes_every_argument(conn):
    conn.execute("CREATE SCHEMA audit")
    conn.execute(
        "CREATE TABLE orders (id int PRIMARY KEY, status text, amount int, note text, updated_at timestamptz)"
    )
    event_table = pgh.track(
        conn,
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
    with pgh.context(conn, user="alice") as ctx:
        conn.execute("INSERT INTO orders VALUES (1, 'new', 10, 'x', now())")
        conn.execute("UPDATE orders SET note = 'not tracked'")
        conn.execute("UPDATE orders SET status = 'paid'")
        conn.execute("UPDATE orders SET amount = 500")
        conn.execute("DELETE FROM orders")
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


def test_track_exclude(conn):
    conn.execute("CREATE TABLE orders (id int PRIMARY KEY, status text, updated_at timestamptz)")
    pgh.track(conn, "orders", exclude=["updated_at"])
    assert tracking(conn, "orders")[2] == ["id", "status"]


def test_update_event_snapshot_old_stores_the_row_before(conn):
    make_orders(conn, trackers=[pgh.UpdateEvent("before", snapshot="old")])
    conn.execute("INSERT INTO orders VALUES (1, 'new')")
    conn.execute("UPDATE orders SET status = 'paid'")
    assert history(conn) == [("before", 1, "new", None)]


def test_track_again_reconfigures(conn):
    make_orders(conn)
    assert pgh.track(conn, "orders", trackers=[pgh.InsertEvent("created")]) == "orders_event"
    assert tracking(conn, "orders")[1] == ["created"]


@pytest.mark.parametrize(
    "name",
    ["My Schema.Order Lines", sql.Identifier("My Schema", "Order Lines")],
    ids=["str", "Identifier"],
)
def test_names_are_quoted(conn, name):
    conn.execute('CREATE SCHEMA "My Schema"')
    conn.execute('CREATE TABLE "My Schema"."Order Lines" (id int PRIMARY KEY, "Status" text)')
    event_table = pgh.track(conn, name, event_table=sql.Identifier("My Schema", "Line History"))
    assert event_table == '"My Schema"."Line History"'
    conn.execute('INSERT INTO "My Schema"."Order Lines" VALUES (1, \'new\')')
    eid = pgh.create_event(conn, name, 1, "insert")
    rows = conn.execute('SELECT pgh_id, pgh_label, "Status" FROM "My Schema"."Line History" ORDER BY pgh_id').fetchall()
    assert rows == [(eid - 1, "insert", "new"), (eid, "insert", "new")]
    pgh.untrack(conn, name, drop_events=True)
    assert conn.execute("""SELECT to_regclass('"My Schema"."Line History"')""").fetchone() == (None,)


def test_a_name_is_never_sql(conn):
    make_orders(conn)
    with pytest.raises(psycopg.errors.UndefinedTable, match='relation "orders; DROP TABLE orders; --" does not exist'):
        pgh.track(conn, "orders; DROP TABLE orders; --")
    with pytest.raises(psycopg.errors.UndefinedTable):
        pgh.track(conn, 'x"; DROP TABLE orders; --')
    assert conn.execute("SELECT to_regclass('orders')::text").fetchone() == ("orders",)


@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda c: pgh.track(c, "a.b.c"), ValueError, r"'a.b.c' is not a table name: use 'table' or 'schema.table'"),
        (lambda c: pgh.track(c, ""), ValueError, "is not a table name"),
        (lambda c: pgh.track(c, ".orders"), ValueError, "is not a table name"),
        (lambda c: pgh.track(c, 42), TypeError, "a table name must be a str such as 'schema.table' or a psycopg.sql.Identifier, not int"),
        (lambda c: pgh.track(c, "orders", fields="status"), TypeError, r"fields must be a list, such as \['status'\], not a str"),
        (lambda c: pgh.track(c, "orders", trackers=[object()]), TypeError, "trackers must be pghistory.InsertEvent"),
        (lambda c: pgh.track(c, "orders", trackers=pgh.InsertEvent()), TypeError, "trackers must be a list"),
        (lambda c: pgh.track(c, "orders", event_table="a.b.c"), ValueError, "is not a event table name"),
        (lambda c: pgh.UpdateEvent(changed="status"), TypeError, r"changed must be a list of column names, such as \['status'\]"),
        (lambda c: pgh.create_event(c, "orders", 1.5, "insert"), TypeError, "obj_id must be an int, str or UUID, not float"),
        (lambda c: pgh.events(c, obj_id=1), ValueError, "obj_id needs a table"),
        (lambda c: pgh.events(c, "orders", labels="update"), TypeError, "labels must be a list"),
        (lambda c: pgh.track("dbname=x", "orders"), TypeError, "needs a psycopg.Connection or psycopg.AsyncConnection"),
    ],
    ids=["3 parts", "empty", "empty schema", "int", "fields str", "tracker object", "trackers not list",
         "event_table", "changed str", "obj_id float", "obj_id without table", "labels str", "not a connection"],
)
def test_bad_arguments_are_refused_before_anything_is_sent(connect, call, error, message):
    subject = connect(autocommit=False)
    with pytest.raises(error, match=message):
        call(subject)
    assert subject.info.transaction_status == TransactionStatus.IDLE


def test_sql_errors_come_back_unchanged(conn):
    make_orders(conn)
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="changed is empty"):
        pgh.track(conn, "orders", trackers=[pgh.UpdateEvent(changed=[])])


def test_untrack_keeps_history_unless_asked(conn):
    make_orders(conn)
    conn.execute("INSERT INTO orders VALUES (1, 'new')")
    assert pgh.untrack(conn, "orders") is None
    conn.execute("INSERT INTO orders VALUES (2, 'untracked')")
    assert history(conn) == [("insert", 1, "new", None)]
    assert conn.execute("SELECT count(*) FROM pghistory.tracking").fetchone() == (0,)

    pgh.track(conn, "orders")
    pgh.untrack(conn, "orders", drop_events=True)
    assert conn.execute("SELECT to_regclass('orders_event')").fetchone() == (None,)


# -- create_event ------------------------------------------------------------------


def test_create_event_snapshots_the_row_in_the_active_context(conn):
    make_orders(conn, trackers=[pgh.InsertEvent(), pgh.ManualEvent("checkout")])
    conn.execute("INSERT INTO orders VALUES (1, 'new'), (2, 'other')")
    with pgh.context(conn, user="alice") as ctx:
        first = pgh.create_event(conn, "orders", 1, "checkout")
        second = pgh.create_event(conn, "orders", "2", "checkout")
    assert isinstance(first, int) and second == first + 1
    assert conn.execute(
        "SELECT pgh_id, pgh_label, id, status, pgh_context_id FROM orders_event WHERE pgh_label = 'checkout' ORDER BY pgh_id"
    ).fetchall() == [(first, "checkout", 1, "new", ctx.id), (second, "checkout", 2, "other", ctx.id)]


def test_create_event_with_a_uuid_key(conn):
    key = uuid.uuid4()
    conn.execute("CREATE TABLE docs (id uuid PRIMARY KEY, title text)")
    pgh.track(conn, "docs", trackers=[pgh.ManualEvent("seen")])
    conn.execute("INSERT INTO docs VALUES (%s, 'readme')", [key])
    pgh_id = pgh.create_event(conn, "docs", key, "seen")
    assert conn.execute("SELECT pgh_id, pgh_obj_id, title FROM docs_event").fetchall() == [(pgh_id, key, "readme")]


def test_create_event_with_an_unknown_label_names_the_labels(conn):
    make_orders(conn, trackers=[pgh.InsertEvent(), pgh.ManualEvent("checkout")])
    conn.execute("INSERT INTO orders VALUES (1, 'new')")
    with pytest.raises(psycopg.Error, match="checkout") as info:
        pgh.create_event(conn, "orders", 1, "nope")
    assert "nope" in str(info.value)


# -- events / revert (issue 4) --------------------------------------------------------


@pytest.fixture
def browsing(conn: psycopg.Connection[Any]) -> None:
    have = conn.execute(
        "SELECT count(*) FROM pg_proc WHERE proname IN ('events', 'revert')"
        " AND pronamespace = 'pghistory'::regnamespace"
    ).fetchone()
    if have != (2,):
        pytest.skip("pghistory.events()/revert() are not in this build of the extension yet")


def test_events_returns_typed_rows_oldest_first(conn, browsing):
    make_orders(conn)
    before = conn.execute("SELECT clock_timestamp()").fetchone()[0]
    with pgh.context(conn, user="alice") as ctx:
        conn.execute("INSERT INTO orders VALUES (1, 'new'), (2, 'other')")
        conn.execute("UPDATE orders SET status = 'paid' WHERE id = 1")
    conn.execute("DELETE FROM orders WHERE id = 1")

    evs = pgh.events(conn, "orders", obj_id=1)
    assert [type(ev) for ev in evs] == [pgh.Event] * 3
    assert [(ev.pgh_label, ev.pgh_obj_id, ev.pgh_data, ev.pgh_diff, ev.pgh_context_id, ev.pgh_context) for ev in evs] == [
        ("insert", "1", {"id": 1, "status": "new"}, None, ctx.id, {"user": "alice"}),
        ("update", "1", {"id": 1, "status": "paid"}, {"status": ["new", "paid"]}, ctx.id, {"user": "alice"}),
        ("delete", "1", {"id": 1, "status": "paid"}, {}, None, None),
    ]
    assert all(ev.pgh_obj_model == "public.orders" and ev.pgh_model == "public.orders_event" for ev in evs)
    assert all(isinstance(ev.pgh_created_at, dt.datetime) and ev.pgh_created_at >= before for ev in evs)
    assert [ev.pgh_id for ev in evs] == sorted(ev.pgh_id for ev in evs)

    assert [ev.pgh_obj_id for ev in pgh.events(conn, "orders")] == ["1", "2", "1", "1"]
    assert [ev.pgh_label for ev in pgh.events(conn, "orders", labels=["update", "delete"])] == ["update", "delete"]
    assert [ev.pgh_obj_id for ev in pgh.events(conn, context_id=ctx.id)] == ["1", "2", "1"]
    assert [ev.pgh_obj_id for ev in pgh.events(conn, context_id=str(ctx.id))] == ["1", "2", "1"]
    assert pgh.events(conn, "orders", since=dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=1)) == []
    assert len(pgh.events(conn, until=dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=1))) == 4


def test_revert_puts_a_row_back(conn, browsing):
    make_orders(conn)
    conn.execute("INSERT INTO orders VALUES (1, 'new')")
    first = conn.execute("SELECT pgh_id FROM orders_event").fetchone()[0]
    conn.execute("UPDATE orders SET status = 'paid'")
    written = pgh.revert(conn, "orders_event", first)
    assert isinstance(written, int) and written > first
    assert conn.execute("SELECT id, status FROM orders").fetchall() == [(1, "new")]
    conn.execute("DELETE FROM orders")
    pgh.revert(conn, "public.orders_event", first)
    assert conn.execute("SELECT id, status FROM orders").fetchall() == [(1, "new")]


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
