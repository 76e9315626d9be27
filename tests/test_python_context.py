"""pghistory.context(): one context per outermost block, on every kind of
connection and transaction pattern, never leaking past the block.

The connection under test is ``subject`` or ``twin``; ``conn`` (autocommit)
observes. Tests taking a twin run on both connection kinds (see python_twins):
``with`` on a Connection, ``async with`` on an AsyncConnection.
"""

from __future__ import annotations

import threading
from typing import Any

import psycopg
import pytest
from psycopg.pq import TransactionStatus

import pghistory as pgh
from python_helpers import contexts, history, make_orders, settings
from python_twins import twin, twin_connect  # noqa: F401 (fixtures)

IDLE = TransactionStatus.IDLE
CLEARED = ("", "")


@pytest.fixture
def orders(conn: psycopg.Connection[Any]) -> None:
    make_orders(conn)


def test_one_context_id_for_the_whole_block(conn, twin, orders):
    with twin.context(user="alice", url="/checkout") as ctx:
        assert twin.settings() == (str(ctx.id), '{"user":"alice","url":"/checkout"}')
        twin.execute("INSERT INTO orders VALUES (1, 'new'), (2, 'new')")
        twin.execute("UPDATE orders SET status = 'paid' WHERE id = 1")
        twin.execute("DELETE FROM orders WHERE id = 2")
    twin.execute("UPDATE orders SET status = 'shipped' WHERE id = 1")

    assert history(conn) == [
        ("insert", 1, "new", ctx.id),
        ("insert", 2, "new", ctx.id),
        ("update", 1, "paid", ctx.id),
        ("delete", 2, "new", ctx.id),
        ("update", 1, "shipped", None),
    ]
    assert contexts(conn) == {ctx.id: {"user": "alice", "url": "/checkout"}}
    assert twin.settings() == CLEARED


def test_each_outermost_block_is_a_new_context(conn, twin, orders):
    with twin.context(user="alice") as first:
        twin.execute("INSERT INTO orders VALUES (1, 'new')")
    with twin.context(user="bob") as second:
        twin.execute("INSERT INTO orders VALUES (2, 'new')")
    assert first.id != second.id
    assert [row[3] for row in history(conn)] == [first.id, second.id]
    assert contexts(conn) == {first.id: {"user": "alice"}, second.id: {"user": "bob"}}


def test_nested_blocks_merge_metadata_and_keep_it_until_the_outermost_ends(conn, twin, orders):
    with twin.context(user="alice", step=1) as outer:
        twin.execute("INSERT INTO orders VALUES (1, 'new')")
        with twin.context(step=2, reason="refund") as inner:
            assert inner.id == outer.id
            assert twin.settings() == (str(outer.id), '{"user":"alice","step":2,"reason":"refund"}')
            twin.execute("UPDATE orders SET status = 'refunded'")
        # as in django-pghistory: merged keys stay until the outermost block ends
        assert twin.settings() == (str(outer.id), '{"user":"alice","step":2,"reason":"refund"}')
        assert outer.metadata == {"user": "alice", "step": 2, "reason": "refund"}
        twin.execute("DELETE FROM orders")
    assert twin.settings() == CLEARED
    assert [row[3] for row in history(conn)] == [outer.id] * 3
    assert contexts(conn) == {outer.id: {"user": "alice", "step": 2, "reason": "refund"}}


def test_call_form_merges_into_the_active_context(conn, twin, orders):
    with twin.context(user="alice") as ctx:
        twin.context_call(order=1, user="alice@example.com")
        assert twin.settings() == (str(ctx.id), '{"user":"alice@example.com","order":1}')
        twin.execute("INSERT INTO orders VALUES (1, 'new')")
    assert history(conn) == [("insert", 1, "new", ctx.id)]
    assert contexts(conn) == {ctx.id: {"user": "alice@example.com", "order": 1}}
    assert twin.settings() == CLEARED


def test_call_form_outside_a_context_does_nothing(conn, twin, orders):
    call = twin.context_call(user="alice")
    assert call.id is None
    assert twin.settings() == (None, None)  # nothing was sent
    twin.execute("INSERT INTO orders VALUES (1, 'new')")
    assert history(conn) == [("insert", 1, "new", None)]
    assert contexts(conn) == {}


def test_metadata_change_after_the_first_event_updates_the_context_row(conn, twin, orders):
    with twin.context(user="alice") as ctx:
        twin.execute("INSERT INTO orders VALUES (1, 'new')")
        assert contexts(conn) == {ctx.id: {"user": "alice"}}
        twin.context_call(reason="late")
        twin.execute("UPDATE orders SET status = 'paid'")
    assert contexts(conn) == {ctx.id: {"user": "alice", "reason": "late"}}


# -- transactions --------------------------------------------------------------


def test_non_autocommit_context_lasts_across_commits(conn, twin_connect, orders):
    subject = twin_connect(autocommit=False)
    with subject.context(user="alice") as ctx:
        subject.execute("INSERT INTO orders VALUES (1, 'new')")
        subject.commit()
        subject.execute("UPDATE orders SET status = 'paid'")
        subject.commit()
        subject.execute("UPDATE orders SET status = 'shipped'")
        subject.commit()
    assert subject.conn.info.transaction_status == IDLE
    assert subject.settings() == CLEARED
    assert [row[3] for row in history(conn)] == [ctx.id] * 3


def test_rollback_inside_the_block_keeps_the_context(conn, twin_connect, orders):
    subject = twin_connect(autocommit=False)
    with subject.context(user="alice") as ctx:
        subject.execute("INSERT INTO orders VALUES (1, 'lost')")
        subject.rollback()
        subject.execute("INSERT INTO orders VALUES (2, 'kept')")
        subject.commit()
    assert history(conn) == [("insert", 2, "kept", ctx.id)]
    assert contexts(conn) == {ctx.id: {"user": "alice"}}
    assert subject.settings() == CLEARED


def test_database_error_inside_the_block_leaves_a_usable_connection_without_context(
    conn, twin_connect, orders
):
    subject = twin_connect(autocommit=False)
    with pytest.raises(psycopg.errors.UniqueViolation):
        with subject.context(user="alice"):
            subject.execute("INSERT INTO orders VALUES (1, 'new')")
            subject.execute("INSERT INTO orders VALUES (1, 'again')")
    assert subject.conn.info.transaction_status == IDLE  # the aborted transaction was rolled back
    subject.execute("INSERT INTO orders VALUES (3, 'after')")
    subject.commit()
    assert history(conn) == [("insert", 3, "after", None)]
    assert subject.settings() == CLEARED


def test_exception_with_a_transaction_open_since_inside_the_block_rolls_it_back(
    conn, twin_connect, orders
):
    subject = twin_connect(autocommit=False)
    with pytest.raises(ZeroDivisionError):
        with subject.context(user="alice"):
            subject.execute("INSERT INTO orders VALUES (1, 'new')")
            1 / 0
    assert subject.conn.info.transaction_status == IDLE
    subject.rollback()  # what the caller's error handling does: the context stays gone
    subject.execute("INSERT INTO orders VALUES (2, 'after')")
    subject.commit()
    assert history(conn) == [("insert", 2, "after", None)]
    assert contexts(conn) == {}
    assert subject.settings() == CLEARED


def test_block_left_with_its_transaction_open_clears_inside_it(conn, twin_connect, orders):
    subject = twin_connect(autocommit=False)
    with subject.context(user="alice") as ctx:
        subject.execute("INSERT INTO orders VALUES (1, 'in block')")
    assert subject.conn.info.transaction_status == TransactionStatus.INTRANS
    subject.execute("INSERT INTO orders VALUES (2, 'after block')")
    subject.commit()
    assert history(conn) == [("insert", 1, "in block", ctx.id), ("insert", 2, "after block", None)]
    assert subject.settings() == CLEARED


def test_block_entered_inside_a_transaction_shares_its_fate(conn, twin_connect, orders):
    subject = twin_connect(autocommit=False)
    subject.execute("INSERT INTO orders VALUES (1, 'before')")
    with subject.context(user="alice") as ctx:
        subject.execute("INSERT INTO orders VALUES (2, 'inside')")
    subject.rollback()
    assert subject.settings() == CLEARED  # rolled back with the transaction
    assert history(conn) == []

    subject.execute("INSERT INTO orders VALUES (3, 'before')")
    with subject.context(user="bob") as ctx:
        subject.execute("INSERT INTO orders VALUES (4, 'inside')")
    subject.execute("INSERT INTO orders VALUES (5, 'after')")
    subject.commit()
    assert history(conn) == [
        ("insert", 3, "before", None),
        ("insert", 4, "inside", ctx.id),
        ("insert", 5, "after", None),
    ]
    assert subject.settings() == CLEARED


def test_exception_after_a_commit_inside_a_block_entered_in_a_transaction(conn, twin_connect, orders):
    # The commit inside the block made the context the session's; the
    # transaction open when the exception leaves began inside the block, so it
    # is rolled back too, else the caller's rollback would bring the context back.
    subject = twin_connect(autocommit=False)
    subject.execute("INSERT INTO orders VALUES (1, 'before')")
    with pytest.raises(ZeroDivisionError):
        with subject.context(user="alice") as ctx:
            subject.execute("INSERT INTO orders VALUES (2, 'inside')")
            subject.commit()
            subject.execute("INSERT INTO orders VALUES (3, 'lost')")
            1 / 0
    assert subject.conn.info.transaction_status == IDLE
    subject.rollback()
    subject.execute("INSERT INTO orders VALUES (4, 'after')")
    subject.commit()
    assert history(conn) == [
        ("insert", 1, "before", None),
        ("insert", 2, "inside", ctx.id),
        ("insert", 4, "after", None),
    ]
    assert subject.settings() == CLEARED


def test_exception_in_the_transaction_the_block_was_entered_in_leaves_it_to_the_caller(
    conn, twin_connect, orders
):
    subject = twin_connect(autocommit=False)
    subject.execute("INSERT INTO orders VALUES (1, 'before')")
    with pytest.raises(ZeroDivisionError):
        with subject.context(user="alice") as ctx:
            subject.execute("INSERT INTO orders VALUES (2, 'inside')")
            1 / 0
    assert subject.conn.info.transaction_status == TransactionStatus.INTRANS  # still the caller's
    subject.execute("INSERT INTO orders VALUES (3, 'after')")
    subject.commit()
    assert history(conn) == [
        ("insert", 1, "before", None),
        ("insert", 2, "inside", ctx.id),
        ("insert", 3, "after", None),
    ]
    assert subject.settings() == CLEARED


def test_nested_block_on_an_idle_connection_makes_the_context_durable(conn, twin_connect, orders):
    subject = twin_connect(autocommit=False)
    subject.execute("SELECT 1")
    with pytest.raises(ZeroDivisionError):
        with subject.context(user="alice") as ctx:  # entered in a transaction
            subject.commit()
            with subject.context(step=2):  # idle: set and committed on its own
                subject.execute("INSERT INTO orders VALUES (1, 'inside')")
                subject.rollback()
                subject.execute("INSERT INTO orders VALUES (2, 'inside')")
                subject.commit()
                subject.execute("INSERT INTO orders VALUES (3, 'lost')")
                1 / 0
    subject.rollback()
    subject.execute("INSERT INTO orders VALUES (4, 'after')")
    subject.commit()
    assert history(conn) == [("insert", 2, "inside", ctx.id), ("insert", 4, "after", None)]
    assert contexts(conn) == {ctx.id: {"user": "alice", "step": 2}}


def test_connection_closed_inside_the_block(conn, twin_connect, orders):
    subject = twin_connect()
    with subject.context(user="alice"):
        subject.close()
    assert subject.conn.closed
    again = twin_connect()
    with again.context(user="bob") as ctx:
        again.execute("INSERT INTO orders VALUES (1, 'new')")
    assert history(conn) == [("insert", 1, "new", ctx.id)]


def test_block_inside_conn_transaction_on_autocommit(conn, twin, orders):
    with twin.transaction():
        with twin.context(user="alice") as ctx:
            twin.execute("INSERT INTO orders VALUES (1, 'new')")
        twin.execute("INSERT INTO orders VALUES (2, 'after')")
    assert history(conn) == [("insert", 1, "new", ctx.id), ("insert", 2, "after", None)]
    assert twin.settings() == CLEARED


def test_error_in_a_block_inside_conn_transaction(conn, twin, orders):
    with pytest.raises(psycopg.errors.UniqueViolation):
        with twin.transaction():
            with twin.context(user="alice"):
                twin.execute("INSERT INTO orders VALUES (1, 'new'), (1, 'dup')")
    assert twin.conn.info.transaction_status == IDLE
    twin.execute("INSERT INTO orders VALUES (2, 'after')")
    assert history(conn) == [("insert", 2, "after", None)]
    assert twin.settings() == CLEARED  # the whole transaction was undone


def test_autocommit_block_that_raises_leaves_no_context(conn, twin, orders):
    with pytest.raises(RuntimeError):
        with twin.context(user="alice") as ctx:
            twin.execute("INSERT INTO orders VALUES (1, 'new')")
            raise RuntimeError("boom")
    twin.execute("INSERT INTO orders VALUES (2, 'after')")
    assert history(conn) == [("insert", 1, "new", ctx.id), ("insert", 2, "after", None)]
    assert twin.settings() == CLEARED


def test_nested_block_raising_keeps_the_outer_context(conn, twin, orders):
    with twin.context(user="alice") as ctx:
        with pytest.raises(KeyError):
            with twin.context(step="inner"):
                raise KeyError("x")
        twin.execute("INSERT INTO orders VALUES (1, 'new')")
    assert history(conn) == [("insert", 1, "new", ctx.id)]
    assert contexts(conn) == {ctx.id: {"user": "alice", "step": "inner"}}


# -- connections, threads, pools -------------------------------------------------


def test_a_context_never_reaches_another_connection(conn, twin_connect, orders):
    subject, other = twin_connect(), twin_connect()
    with subject.context(user="alice") as ctx:
        other.execute("INSERT INTO orders VALUES (1, 'other')")
        subject.execute("INSERT INTO orders VALUES (2, 'mine')")
        assert other.settings() == (None, None)
        other.context_call(ignored=True)  # no context on `other`: does nothing
    assert history(conn) == [("insert", 1, "other", None), ("insert", 2, "mine", ctx.id)]
    assert contexts(conn) == {ctx.id: {"user": "alice"}}


def test_connections_in_threads_keep_their_own_contexts(conn, connect, orders):
    conn.execute("INSERT INTO orders SELECT g, 'new' FROM generate_series(1, 2) AS g")
    subjects = [connect(), connect()]
    barrier = threading.Barrier(2, timeout=30)
    ids: dict[int, Any] = {}
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            with pgh.context(subjects[n], worker=n) as ctx:
                ids[n + 1] = ctx.id
                for i in range(10):
                    barrier.wait()  # both contexts are active, writes interleave
                    subjects[n].execute("UPDATE orders SET status = %s WHERE id = %s", [f"s{i}", n + 1])
                    barrier.wait()
        except BaseException as ex:  # reported by the main thread
            errors.append(ex)
            barrier.abort()

    threads = [threading.Thread(target=work, args=(n,)) for n in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    rows = conn.execute(
        "SELECT id, pgh_context_id, count(*) FROM orders_event WHERE pgh_label = 'update'"
        " GROUP BY 1, 2 ORDER BY 1"
    ).fetchall()
    assert rows == [(1, ids[1], 10), (2, ids[2], 10)]
    assert contexts(conn) == {ids[1]: {"worker": 0}, ids[2]: {"worker": 1}}


@pytest.mark.parametrize("reset", [False, True], ids=["no-reset", "reset"])
def test_a_pooled_connection_goes_back_without_context(conn, dsn, orders, reset):
    psycopg_pool = pytest.importorskip("psycopg_pool")
    kwargs: dict[str, Any] = {"reset": pgh.reset} if reset else {}
    with psycopg_pool.ConnectionPool(dsn, min_size=1, max_size=1, open=True, **kwargs) as pool:
        with pool.connection() as c:
            with pgh.context(c, user="alice") as ok:
                c.execute("INSERT INTO orders VALUES (1, 'new')")
        with pytest.raises(ValueError):
            with pool.connection() as c:
                with pgh.context(c, user="bob"):
                    c.execute("INSERT INTO orders VALUES (2, 'lost')")
                    raise ValueError
        with pool.connection() as c:  # the same server session (max_size=1)
            assert settings(c) == CLEARED
            c.execute("INSERT INTO orders VALUES (3, 'next borrower')")
    assert history(conn) == [("insert", 1, "new", ok.id), ("insert", 3, "next borrower", None)]


def test_reset_as_pool_callback_covers_a_rollback_after_the_block(conn, dsn, orders):
    psycopg_pool = pytest.importorskip("psycopg_pool")
    with psycopg_pool.ConnectionPool(dsn, min_size=1, max_size=1, open=True, reset=pgh.reset) as pool:
        with pytest.raises(ValueError):
            with pool.connection() as c:
                with pgh.context(c, user="alice"):
                    c.execute("INSERT INTO orders VALUES (1, 'new')")
                raise ValueError  # after the block, before the pool's rollback
        with pool.connection() as c:
            assert settings(c) == CLEARED
            c.execute("INSERT INTO orders VALUES (2, 'next borrower')")
    assert history(conn) == [("insert", 2, "next borrower", None)]


def test_reset_clears_everything_pghistory_set(conn, twin, orders):
    twin.execute("SELECT pghistory.set_context('{\"user\": \"sql\"}', false)")
    twin.execute("SET pghistory.enabled = off")
    twin.reset()
    assert twin.settings() == CLEARED
    twin.execute("INSERT INTO orders VALUES (1, 'new')")
    assert history(conn) == [("insert", 1, "new", None)]


# -- local=True --------------------------------------------------------------------


def test_local_context_ends_with_its_transaction(conn, twin, orders):
    with twin.transaction():
        with twin.context(local=True, user="alice") as ctx:
            twin.execute("INSERT INTO orders VALUES (1, 'new')")
            with twin.context(step=2):
                twin.execute("UPDATE orders SET status = 'paid'")
        twin.execute("INSERT INTO orders VALUES (2, 'after')")
        assert twin.settings() == CLEARED
    assert twin.settings() == ("", "")  # never set for the session
    assert history(conn) == [
        ("insert", 1, "new", ctx.id),
        ("update", 1, "paid", ctx.id),
        ("insert", 2, "after", None),
    ]
    assert contexts(conn) == {ctx.id: {"user": "alice", "step": 2}}


def test_local_context_is_gone_when_its_transaction_ends_inside_the_block(conn, twin_connect, orders):
    subject = twin_connect(autocommit=False)
    with subject.context(local=True, user="alice") as ctx:
        assert subject.conn.info.transaction_status == TransactionStatus.INTRANS
        subject.execute("INSERT INTO orders VALUES (1, 'new')")
        subject.commit()
        subject.execute("INSERT INTO orders VALUES (2, 'next transaction')")
        subject.commit()
    assert history(conn) == [("insert", 1, "new", ctx.id), ("insert", 2, "next transaction", None)]
    assert subject.settings() == ("", "")


def test_local_context_needs_a_transaction_on_an_autocommit_connection(conn, twin, orders):
    with pytest.raises(pgh.ContextError, match="local=True needs an open transaction"):
        with twin.context(local=True, user="alice"):
            pass
    assert twin.settings() == (None, None)
    twin.execute("INSERT INTO orders VALUES (1, 'new')")
    assert history(conn) == [("insert", 1, "new", None)]


def test_local_context_rolled_back_with_its_transaction(conn, twin, orders):
    with pytest.raises(psycopg.errors.UniqueViolation):
        with twin.transaction():
            with twin.context(local=True, user="alice"):
                twin.execute("INSERT INTO orders VALUES (1, 'a'), (1, 'b')")
    assert twin.conn.info.transaction_status == IDLE
    assert twin.settings() == ("", "")


# -- metadata --------------------------------------------------------------------


def test_metadata_is_stored_as_json(conn, twin, orders):
    import datetime as dt
    import decimal
    import uuid

    ref = uuid.UUID("12345678-1234-5678-1234-567812345678")
    with twin.context(
        user={"id": 7, "roles": ("admin", "ops")},
        request=ref,
        at=dt.datetime(2024, 5, 6, 7, 8, 9, tzinfo=dt.timezone.utc),
        day=dt.date(2024, 5, 6),
        price=decimal.Decimal("1.10"),
        ratio=0.5,
        flag=True,
        nothing=None,
        text="ünïcødé \"quoted\" \\ back",
    ) as ctx:
        twin.execute("INSERT INTO orders VALUES (1, 'new')")
    assert contexts(conn) == {
        ctx.id: {
            "user": {"id": 7, "roles": ["admin", "ops"]},
            "request": "12345678-1234-5678-1234-567812345678",
            "at": "2024-05-06T07:08:09+00:00",
            "day": "2024-05-06",
            "price": "1.10",
            "ratio": 0.5,
            "flag": True,
            "nothing": None,
            "text": "ünïcødé \"quoted\" \\ back",
        }
    }


def _circular() -> dict[str, Any]:
    loop: dict[str, Any] = {}
    loop["self"] = loop
    return loop


@pytest.mark.parametrize(
    "metadata, error, message",
    [
        ({"tags": {"a", "b"}}, TypeError, r"metadata\['tags'\] is a set, which cannot be encoded as JSON"),
        ({"obj": object()}, TypeError, r"metadata\['obj'\] is a object"),
        ({"nested": {1: "one"}}, TypeError, r"metadata\['nested'\] has the key 1 \(int\): JSON object keys must be strings"),
        ({"ratio": float("nan")}, ValueError, r"metadata\['ratio'\] is nan, which JSON cannot represent"),
        ({"big": float("inf")}, ValueError, r"is inf"),
        ({"name": "a\x00b"}, ValueError, r"metadata\['name'\] contains a NUL character"),
        ({"name": "\ud800"}, ValueError, r"metadata\['name'\] is not valid Unicode"),
        ({"loop": _circular()}, ValueError, r"circular reference"),
        ({"blob": "x" * (pgh.MAX_METADATA_BYTES + 1)}, ValueError,
         r"context metadata is \d+ bytes of JSON, more than the 1048576 bytes .* largest value is 'blob'"),
    ],
    ids=["set", "object", "int-key", "nan", "inf", "nul", "surrogate", "circular", "huge"],
)
def test_bad_metadata_is_refused_before_anything_is_sent(conn, twin_connect, orders, metadata, error, message):
    subject = twin_connect(autocommit=False)
    with pytest.raises(error, match=message):
        subject.context_call(**metadata)
    with pytest.raises(error, match=message):
        with subject.context(ok=1, **metadata):
            pass
    assert subject.conn.info.transaction_status == IDLE  # not even a transaction was begun
    assert subject.settings() == (None, None)


def test_non_string_keyword_is_refused_by_python(conn):
    with pytest.raises(TypeError, match="keywords must be strings"):
        pgh.context(conn, **{1: "x"})  # type: ignore[misc]


def test_merged_metadata_too_big_is_refused_and_the_context_is_kept(conn, twin, orders):
    half = "x" * (pgh.MAX_METADATA_BYTES // 2 + 10)
    with twin.context(a=half) as ctx:
        with pytest.raises(ValueError, match="more than the 1048576 bytes"):
            with twin.context(b=half):
                pass
        twin.execute("INSERT INTO orders VALUES (1, 'new')")
        assert ctx.metadata == {"a": half}
    assert history(conn) == [("insert", 1, "new", ctx.id)]
    assert contexts(conn) == {ctx.id: {"a": half}}


def test_local_is_reserved_and_conn_is_a_metadata_key(conn, twin, orders):
    with twin.context(conn="primary") as ctx:
        twin.execute("INSERT INTO orders VALUES (1, 'new')")
    assert contexts(conn) == {ctx.id: {"conn": "primary"}}


def test_context_refuses_what_is_not_a_psycopg_connection():
    with pytest.raises(TypeError, match="needs a psycopg.Connection or psycopg.AsyncConnection, not builtins.str"):
        pgh.context("dbname=x", user="alice")  # type: ignore[call-overload]


# -- ignore ----------------------------------------------------------------------


def test_ignore_records_nothing_and_restores(conn, twin, orders):
    with twin.ignore():
        twin.execute("INSERT INTO orders VALUES (1, 'ignored')")
        conn.execute("INSERT INTO orders VALUES (2, 'other session')")
        with twin.ignore():
            twin.execute("UPDATE orders SET status = 'still ignored' WHERE id = 1")
        twin.execute("UPDATE orders SET status = 'ignored again' WHERE id = 1")
    twin.execute("UPDATE orders SET status = 'recorded' WHERE id = 1")
    assert history(conn) == [("insert", 2, "other session", None), ("update", 1, "recorded", None)]
    assert twin.execute("SELECT current_setting('pghistory.enabled')") == [("",)]


def test_ignore_restores_the_value_it_found(conn, twin, orders):
    twin.execute("SET pghistory.enabled = on")
    with twin.ignore():
        assert twin.execute("SHOW pghistory.enabled") == [("off",)]
    assert twin.execute("SHOW pghistory.enabled") == [("on",)]


def test_ignore_survives_a_rollback_and_an_exception(conn, twin_connect, orders):
    subject = twin_connect(autocommit=False)
    with pytest.raises(RuntimeError):
        with subject.ignore():
            subject.execute("INSERT INTO orders VALUES (1, 'rolled back')")
            subject.rollback()
            subject.execute("INSERT INTO orders VALUES (2, 'ignored')")
            subject.commit()
            subject.execute("INSERT INTO orders VALUES (3, 'rolled back by the exit')")
            raise RuntimeError
    subject.rollback()
    subject.execute("INSERT INTO orders VALUES (4, 'recorded')")
    subject.commit()
    assert history(conn) == [("insert", 4, "recorded", None)]
    assert conn.execute("SELECT id FROM orders ORDER BY id").fetchall() == [(2,), (4,)]


def test_ignore_local(conn, twin, orders):
    with twin.transaction():
        with twin.ignore(local=True):
            twin.execute("INSERT INTO orders VALUES (1, 'ignored')")
        twin.execute("INSERT INTO orders VALUES (2, 'recorded')")
    twin.execute("INSERT INTO orders VALUES (3, 'recorded')")
    assert [row[1] for row in history(conn)] == [2, 3]
    with pytest.raises(pgh.ContextError):
        with twin.ignore(local=True):
            pass


def test_context_and_ignore_together(conn, twin, orders):
    with twin.context(user="alice") as ctx:
        with twin.ignore():
            twin.execute("INSERT INTO orders VALUES (1, 'ignored')")
        twin.execute("INSERT INTO orders VALUES (2, 'recorded')")
    assert history(conn) == [("insert", 2, "recorded", ctx.id)]


