"""pghistory.context(): one context per outermost block, on every kind of
connection and transaction pattern, never leaking past the block.

The connection under test is ``subject``; ``conn`` (autocommit) observes.
"""

from __future__ import annotations

import threading
from typing import Any

import psycopg
import pytest
from psycopg.pq import TransactionStatus

import pghistory as pgh
from python_helpers import contexts, history, make_orders, settings

IDLE = TransactionStatus.IDLE
CLEARED = ("", "")


@pytest.fixture
def orders(conn: psycopg.Connection[Any]) -> None:
    make_orders(conn)


def test_one_context_id_for_the_whole_block(conn, orders):
    with pgh.context(conn, user="alice", url="/checkout") as ctx:
        assert settings(conn) == (str(ctx.id), '{"user":"alice","url":"/checkout"}')
        conn.execute("INSERT INTO orders VALUES (1, 'new'), (2, 'new')")
        conn.execute("UPDATE orders SET status = 'paid' WHERE id = 1")
        conn.execute("DELETE FROM orders WHERE id = 2")
    conn.execute("UPDATE orders SET status = 'shipped' WHERE id = 1")

    assert history(conn) == [
        ("insert", 1, "new", ctx.id),
        ("insert", 2, "new", ctx.id),
        ("update", 1, "paid", ctx.id),
        ("delete", 2, "new", ctx.id),
        ("update", 1, "shipped", None),
    ]
    assert contexts(conn) == {ctx.id: {"user": "alice", "url": "/checkout"}}
    assert settings(conn) == CLEARED


def test_each_outermost_block_is_a_new_context(conn, orders):
    with pgh.context(conn, user="alice") as first:
        conn.execute("INSERT INTO orders VALUES (1, 'new')")
    with pgh.context(conn, user="bob") as second:
        conn.execute("INSERT INTO orders VALUES (2, 'new')")
    assert first.id != second.id
    assert [row[3] for row in history(conn)] == [first.id, second.id]
    assert contexts(conn) == {first.id: {"user": "alice"}, second.id: {"user": "bob"}}


def test_nested_blocks_merge_metadata_and_keep_it_until_the_outermost_ends(conn, orders):
    with pgh.context(conn, user="alice", step=1) as outer:
        conn.execute("INSERT INTO orders VALUES (1, 'new')")
        with pgh.context(conn, step=2, reason="refund") as inner:
            assert inner.id == outer.id
            assert settings(conn) == (str(outer.id), '{"user":"alice","step":2,"reason":"refund"}')
            conn.execute("UPDATE orders SET status = 'refunded'")
        # as in django-pghistory: merged keys stay until the outermost block ends
        assert settings(conn) == (str(outer.id), '{"user":"alice","step":2,"reason":"refund"}')
        assert outer.metadata == {"user": "alice", "step": 2, "reason": "refund"}
        conn.execute("DELETE FROM orders")
    assert settings(conn) == CLEARED
    assert [row[3] for row in history(conn)] == [outer.id] * 3
    assert contexts(conn) == {outer.id: {"user": "alice", "step": 2, "reason": "refund"}}


def test_call_form_merges_into_the_active_context(conn, orders):
    with pgh.context(conn, user="alice") as ctx:
        pgh.context(conn, order=1, user="alice@example.com")
        assert settings(conn) == (str(ctx.id), '{"user":"alice@example.com","order":1}')
        conn.execute("INSERT INTO orders VALUES (1, 'new')")
    assert history(conn) == [("insert", 1, "new", ctx.id)]
    assert contexts(conn) == {ctx.id: {"user": "alice@example.com", "order": 1}}
    assert settings(conn) == CLEARED


def test_call_form_outside_a_context_does_nothing(conn, orders):
    call = pgh.context(conn, user="alice")
    assert call.id is None
    assert settings(conn) == (None, None)  # nothing was sent
    conn.execute("INSERT INTO orders VALUES (1, 'new')")
    assert history(conn) == [("insert", 1, "new", None)]
    assert contexts(conn) == {}


def test_metadata_change_after_the_first_event_updates_the_context_row(conn, orders):
    with pgh.context(conn, user="alice") as ctx:
        conn.execute("INSERT INTO orders VALUES (1, 'new')")
        assert contexts(conn) == {ctx.id: {"user": "alice"}}
        pgh.context(conn, reason="late")
        conn.execute("UPDATE orders SET status = 'paid'")
    assert contexts(conn) == {ctx.id: {"user": "alice", "reason": "late"}}


# -- transactions --------------------------------------------------------------


def test_non_autocommit_context_lasts_across_commits(conn, connect, orders):
    subject = connect(autocommit=False)
    with pgh.context(subject, user="alice") as ctx:
        subject.execute("INSERT INTO orders VALUES (1, 'new')")
        subject.commit()
        subject.execute("UPDATE orders SET status = 'paid'")
        subject.commit()
        subject.execute("UPDATE orders SET status = 'shipped'")
        subject.commit()
    assert subject.info.transaction_status == IDLE
    assert settings(subject) == CLEARED
    assert [row[3] for row in history(conn)] == [ctx.id] * 3


def test_rollback_inside_the_block_keeps_the_context(conn, connect, orders):
    subject = connect(autocommit=False)
    with pgh.context(subject, user="alice") as ctx:
        subject.execute("INSERT INTO orders VALUES (1, 'lost')")
        subject.rollback()
        subject.execute("INSERT INTO orders VALUES (2, 'kept')")
        subject.commit()
    assert history(conn) == [("insert", 2, "kept", ctx.id)]
    assert contexts(conn) == {ctx.id: {"user": "alice"}}
    assert settings(subject) == CLEARED


def test_database_error_inside_the_block_leaves_a_usable_connection_without_context(
    conn, connect, orders
):
    subject = connect(autocommit=False)
    with pytest.raises(psycopg.errors.UniqueViolation):
        with pgh.context(subject, user="alice"):
            subject.execute("INSERT INTO orders VALUES (1, 'new')")
            subject.execute("INSERT INTO orders VALUES (1, 'again')")
    assert subject.info.transaction_status == IDLE  # the aborted transaction was rolled back
    subject.execute("INSERT INTO orders VALUES (3, 'after')")
    subject.commit()
    assert history(conn) == [("insert", 3, "after", None)]
    assert settings(subject) == CLEARED


def test_exception_with_a_transaction_open_since_inside_the_block_rolls_it_back(
    conn, connect, orders
):
    subject = connect(autocommit=False)
    with pytest.raises(ZeroDivisionError):
        with pgh.context(subject, user="alice"):
            subject.execute("INSERT INTO orders VALUES (1, 'new')")
            1 / 0
    assert subject.info.transaction_status == IDLE
    subject.rollback()  # what the caller's error handling does: the context stays gone
    subject.execute("INSERT INTO orders VALUES (2, 'after')")
    subject.commit()
    assert history(conn) == [("insert", 2, "after", None)]
    assert contexts(conn) == {}
    assert settings(subject) == CLEARED


def test_block_left_with_its_transaction_open_clears_inside_it(conn, connect, orders):
    subject = connect(autocommit=False)
    with pgh.context(subject, user="alice") as ctx:
        subject.execute("INSERT INTO orders VALUES (1, 'in block')")
    assert subject.info.transaction_status == TransactionStatus.INTRANS
    subject.execute("INSERT INTO orders VALUES (2, 'after block')")
    subject.commit()
    assert history(conn) == [("insert", 1, "in block", ctx.id), ("insert", 2, "after block", None)]
    assert settings(subject) == CLEARED


def test_block_entered_inside_a_transaction_shares_its_fate(conn, connect, orders):
    subject = connect(autocommit=False)
    subject.execute("INSERT INTO orders VALUES (1, 'before')")
    with pgh.context(subject, user="alice") as ctx:
        subject.execute("INSERT INTO orders VALUES (2, 'inside')")
    subject.rollback()
    assert settings(subject) == CLEARED  # rolled back with the transaction
    assert history(conn) == []

    subject.execute("INSERT INTO orders VALUES (3, 'before')")
    with pgh.context(subject, user="bob") as ctx:
        subject.execute("INSERT INTO orders VALUES (4, 'inside')")
    subject.execute("INSERT INTO orders VALUES (5, 'after')")
    subject.commit()
    assert history(conn) == [
        ("insert", 3, "before", None),
        ("insert", 4, "inside", ctx.id),
        ("insert", 5, "after", None),
    ]
    assert settings(subject) == CLEARED


def test_exception_after_a_commit_inside_a_block_entered_in_a_transaction(conn, connect, orders):
    # The commit inside the block made the context the session's; the
    # transaction open when the exception leaves began inside the block, so it
    # is rolled back too, else the caller's rollback would bring the context back.
    subject = connect(autocommit=False)
    subject.execute("INSERT INTO orders VALUES (1, 'before')")
    with pytest.raises(ZeroDivisionError):
        with pgh.context(subject, user="alice") as ctx:
            subject.execute("INSERT INTO orders VALUES (2, 'inside')")
            subject.commit()
            subject.execute("INSERT INTO orders VALUES (3, 'lost')")
            1 / 0
    assert subject.info.transaction_status == IDLE
    subject.rollback()
    subject.execute("INSERT INTO orders VALUES (4, 'after')")
    subject.commit()
    assert history(conn) == [
        ("insert", 1, "before", None),
        ("insert", 2, "inside", ctx.id),
        ("insert", 4, "after", None),
    ]
    assert settings(subject) == CLEARED


def test_exception_in_the_transaction_the_block_was_entered_in_leaves_it_to_the_caller(
    conn, connect, orders
):
    subject = connect(autocommit=False)
    subject.execute("INSERT INTO orders VALUES (1, 'before')")
    with pytest.raises(ZeroDivisionError):
        with pgh.context(subject, user="alice") as ctx:
            subject.execute("INSERT INTO orders VALUES (2, 'inside')")
            1 / 0
    assert subject.info.transaction_status == TransactionStatus.INTRANS  # still the caller's
    subject.execute("INSERT INTO orders VALUES (3, 'after')")
    subject.commit()
    assert history(conn) == [
        ("insert", 1, "before", None),
        ("insert", 2, "inside", ctx.id),
        ("insert", 3, "after", None),
    ]
    assert settings(subject) == CLEARED


def test_nested_block_on_an_idle_connection_makes_the_context_durable(conn, connect, orders):
    subject = connect(autocommit=False)
    subject.execute("SELECT 1")
    with pytest.raises(ZeroDivisionError):
        with pgh.context(subject, user="alice") as ctx:  # entered in a transaction
            subject.commit()
            with pgh.context(subject, step=2):  # idle: set and committed on its own
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


def test_connection_closed_inside_the_block(conn, connect, orders):
    subject = connect()
    with pgh.context(subject, user="alice"):
        subject.close()
    assert subject.closed
    again = connect()
    with pgh.context(again, user="bob") as ctx:
        again.execute("INSERT INTO orders VALUES (1, 'new')")
    assert history(conn) == [("insert", 1, "new", ctx.id)]


def test_block_inside_conn_transaction_on_autocommit(conn, orders):
    with conn.transaction():
        with pgh.context(conn, user="alice") as ctx:
            conn.execute("INSERT INTO orders VALUES (1, 'new')")
        conn.execute("INSERT INTO orders VALUES (2, 'after')")
    assert history(conn) == [("insert", 1, "new", ctx.id), ("insert", 2, "after", None)]
    assert settings(conn) == CLEARED


def test_error_in_a_block_inside_conn_transaction(conn, orders):
    with pytest.raises(psycopg.errors.UniqueViolation):
        with conn.transaction():
            with pgh.context(conn, user="alice"):
                conn.execute("INSERT INTO orders VALUES (1, 'new'), (1, 'dup')")
    assert conn.info.transaction_status == IDLE
    conn.execute("INSERT INTO orders VALUES (2, 'after')")
    assert history(conn) == [("insert", 2, "after", None)]
    assert settings(conn) == CLEARED  # the whole transaction was undone


def test_autocommit_block_that_raises_leaves_no_context(conn, orders):
    with pytest.raises(RuntimeError):
        with pgh.context(conn, user="alice") as ctx:
            conn.execute("INSERT INTO orders VALUES (1, 'new')")
            raise RuntimeError("boom")
    conn.execute("INSERT INTO orders VALUES (2, 'after')")
    assert history(conn) == [("insert", 1, "new", ctx.id), ("insert", 2, "after", None)]
    assert settings(conn) == CLEARED


def test_nested_block_raising_keeps_the_outer_context(conn, orders):
    with pgh.context(conn, user="alice") as ctx:
        with pytest.raises(KeyError):
            with pgh.context(conn, step="inner"):
                raise KeyError("x")
        conn.execute("INSERT INTO orders VALUES (1, 'new')")
    assert history(conn) == [("insert", 1, "new", ctx.id)]
    assert contexts(conn) == {ctx.id: {"user": "alice", "step": "inner"}}


# -- connections, threads, pools -------------------------------------------------


def test_a_context_never_reaches_another_connection(conn, connect, orders):
    other = connect()
    with pgh.context(conn, user="alice") as ctx:
        other.execute("INSERT INTO orders VALUES (1, 'other')")
        conn.execute("INSERT INTO orders VALUES (2, 'mine')")
        assert settings(other) == (None, None)
        pgh.context(other, ignored=True)  # no context on `other`: does nothing
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


def test_reset_clears_everything_pghistory_set(conn, orders):
    conn.execute("SELECT pghistory.set_context('{\"user\": \"sql\"}', false)")
    conn.execute("SET pghistory.enabled = off")
    pgh.reset(conn)
    assert settings(conn) == CLEARED
    conn.execute("INSERT INTO orders VALUES (1, 'new')")
    assert history(conn) == [("insert", 1, "new", None)]


# -- local=True --------------------------------------------------------------------


def test_local_context_ends_with_its_transaction(conn, orders):
    with conn.transaction():
        with pgh.context(conn, local=True, user="alice") as ctx:
            conn.execute("INSERT INTO orders VALUES (1, 'new')")
            with pgh.context(conn, step=2):
                conn.execute("UPDATE orders SET status = 'paid'")
        conn.execute("INSERT INTO orders VALUES (2, 'after')")
        assert settings(conn) == CLEARED
    assert settings(conn) == ("", "")  # never set for the session
    assert history(conn) == [
        ("insert", 1, "new", ctx.id),
        ("update", 1, "paid", ctx.id),
        ("insert", 2, "after", None),
    ]
    assert contexts(conn) == {ctx.id: {"user": "alice", "step": 2}}


def test_local_context_is_gone_when_its_transaction_ends_inside_the_block(conn, connect, orders):
    subject = connect(autocommit=False)
    with pgh.context(subject, local=True, user="alice") as ctx:
        assert subject.info.transaction_status == TransactionStatus.INTRANS
        subject.execute("INSERT INTO orders VALUES (1, 'new')")
        subject.commit()
        subject.execute("INSERT INTO orders VALUES (2, 'next transaction')")
        subject.commit()
    assert history(conn) == [("insert", 1, "new", ctx.id), ("insert", 2, "next transaction", None)]
    assert settings(subject) == ("", "")


def test_local_context_needs_a_transaction_on_an_autocommit_connection(conn, orders):
    with pytest.raises(pgh.ContextError, match="local=True needs an open transaction"):
        with pgh.context(conn, local=True, user="alice"):
            pass
    assert settings(conn) == (None, None)
    conn.execute("INSERT INTO orders VALUES (1, 'new')")
    assert history(conn) == [("insert", 1, "new", None)]


def test_local_context_rolled_back_with_its_transaction(conn, orders):
    with pytest.raises(psycopg.errors.UniqueViolation):
        with conn.transaction():
            with pgh.context(conn, local=True, user="alice"):
                conn.execute("INSERT INTO orders VALUES (1, 'a'), (1, 'b')")
    assert conn.info.transaction_status == IDLE
    assert settings(conn) == ("", "")


# -- metadata --------------------------------------------------------------------


def test_metadata_is_stored_as_json(conn, orders):
    import datetime as dt
    import decimal
    import uuid

    ref = uuid.UUID("12345678-1234-5678-1234-567812345678")
    with pgh.context(
        conn,
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
        conn.execute("INSERT INTO orders VALUES (1, 'new')")
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
def test_bad_metadata_is_refused_before_anything_is_sent(conn, connect, orders, metadata, error, message):
    subject = connect(autocommit=False)
    with pytest.raises(error, match=message):
        pgh.context(subject, **metadata)
    with pytest.raises(error, match=message):
        with pgh.context(subject, ok=1, **metadata):
            pass
    assert subject.info.transaction_status == IDLE  # not even a transaction was begun
    assert settings(subject) == (None, None)


def test_non_string_keyword_is_refused_by_python(conn):
    with pytest.raises(TypeError, match="keywords must be strings"):
        pgh.context(conn, **{1: "x"})  # type: ignore[misc]


def test_merged_metadata_too_big_is_refused_and_the_context_is_kept(conn, orders):
    half = "x" * (pgh.MAX_METADATA_BYTES // 2 + 10)
    with pgh.context(conn, a=half) as ctx:
        with pytest.raises(ValueError, match="more than the 1048576 bytes"):
            with pgh.context(conn, b=half):
                pass
        conn.execute("INSERT INTO orders VALUES (1, 'new')")
        assert ctx.metadata == {"a": half}
    assert history(conn) == [("insert", 1, "new", ctx.id)]
    assert contexts(conn) == {ctx.id: {"a": half}}


def test_local_is_reserved_and_conn_is_a_metadata_key(conn, orders):
    with pgh.context(conn, conn="primary") as ctx:
        conn.execute("INSERT INTO orders VALUES (1, 'new')")
    assert contexts(conn) == {ctx.id: {"conn": "primary"}}


def test_context_refuses_what_is_not_a_psycopg_connection():
    with pytest.raises(TypeError, match="needs a psycopg.Connection or psycopg.AsyncConnection, not builtins.str"):
        pgh.context("dbname=x", user="alice")  # type: ignore[call-overload]


# -- ignore ----------------------------------------------------------------------


def test_ignore_records_nothing_and_restores(conn, connect, orders):
    other = connect()
    with pgh.ignore(conn):
        conn.execute("INSERT INTO orders VALUES (1, 'ignored')")
        other.execute("INSERT INTO orders VALUES (2, 'other session')")
        with pgh.ignore(conn):
            conn.execute("UPDATE orders SET status = 'still ignored' WHERE id = 1")
        conn.execute("UPDATE orders SET status = 'ignored again' WHERE id = 1")
    conn.execute("UPDATE orders SET status = 'recorded' WHERE id = 1")
    assert history(conn) == [("insert", 2, "other session", None), ("update", 1, "recorded", None)]
    assert conn.execute("SELECT current_setting('pghistory.enabled')").fetchone() == ("",)


def test_ignore_restores_the_value_it_found(conn, orders):
    conn.execute("SET pghistory.enabled = on")
    with pgh.ignore(conn):
        assert conn.execute("SHOW pghistory.enabled").fetchone() == ("off",)
    assert conn.execute("SHOW pghistory.enabled").fetchone() == ("on",)


def test_ignore_survives_a_rollback_and_an_exception(conn, connect, orders):
    subject = connect(autocommit=False)
    with pytest.raises(RuntimeError):
        with pgh.ignore(subject):
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


def test_ignore_local(conn, orders):
    with conn.transaction():
        with pgh.ignore(conn, local=True):
            conn.execute("INSERT INTO orders VALUES (1, 'ignored')")
        conn.execute("INSERT INTO orders VALUES (2, 'recorded')")
    conn.execute("INSERT INTO orders VALUES (3, 'recorded')")
    assert [row[1] for row in history(conn)] == [2, 3]
    with pytest.raises(pgh.ContextError):
        with pgh.ignore(conn, local=True):
            pass


def test_context_and_ignore_together(conn, orders):
    with pgh.context(conn, user="alice") as ctx:
        with pgh.ignore(conn):
            conn.execute("INSERT INTO orders VALUES (1, 'ignored')")
        conn.execute("INSERT INTO orders VALUES (2, 'recorded')")
    assert history(conn) == [("insert", 2, "recorded", ctx.id)]


