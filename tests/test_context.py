"""Context: the GUCs, the SQL helpers, and what events and pghistory.context record."""

from __future__ import annotations

import uuid

import psycopg
import pytest

from sqlhelpers import events, rows, value


@pytest.fixture
def orders(conn: psycopg.Connection) -> str:
    conn.execute("CREATE TABLE orders (id int PRIMARY KEY, status text)")
    conn.execute("SELECT pghistory.track('orders')")
    conn.execute("INSERT INTO orders SELECT g, 'new' FROM generate_series(1, 100) AS g")
    return "orders"


def context_writes(conn: psycopg.Connection) -> tuple[int, int]:
    """Rows inserted into and updated in pghistory.context by the current transaction."""
    return rows(conn, """SELECT n_tup_ins, n_tup_upd FROM pg_stat_xact_user_tables
                          WHERE relid = 'pghistory.context'::regclass""")[0]


def test_set_context_starts_a_context_and_merges_into_it(conn):
    with conn.transaction():
        first = value(conn, """SELECT pghistory.set_context('{"user": "alice", "url": "/a"}')""")
        assert isinstance(first, uuid.UUID)
        assert value(conn, "SELECT pghistory.current_context_id()") == first
        again = value(conn, """SELECT pghistory.set_context('{"url": "/b", "reason": "refund"}')""")
        assert again == first
        assert value(conn, "SELECT current_setting('pghistory.context_id')") == str(first)
        assert value(conn, "SELECT current_setting('pghistory.context_metadata')::jsonb") == {
            "user": "alice", "url": "/b", "reason": "refund"}
    # is_local (the default): gone with the transaction
    assert value(conn, "SELECT pghistory.current_context_id()") is None


def test_session_context_lasts_until_cleared(conn):
    session = value(conn, """SELECT pghistory.set_context('{"job": "nightly"}', is_local => false)""")
    assert value(conn, "SELECT pghistory.current_context_id()") == session
    conn.execute("SELECT pghistory.clear_context()")
    assert value(conn, "SELECT pghistory.current_context_id()") is None
    assert value(conn, "SELECT current_setting('pghistory.context_metadata')") == ""


def test_events_point_at_the_context_row(conn, orders):
    with conn.transaction():
        context_id = value(conn, """SELECT pghistory.set_context('{"user": "alice"}')""")
        conn.execute("UPDATE orders SET status = 'paid' WHERE id <= 2")
    conn.execute("UPDATE orders SET status = 'shipped' WHERE id = 1")
    assert events(conn, "orders_event", "pgh_label, id, pgh_context_id")[100:] == [
        ("update", 1, context_id), ("update", 2, context_id), ("update", 1, None)]
    assert rows(conn, "SELECT id, metadata, created_at = updated_at FROM pghistory.context") == [
        (context_id, {"user": "alice"}, True)]


def test_context_is_upserted_once_per_statement_not_per_row(conn, orders):
    with conn.transaction():
        conn.execute("""SELECT pghistory.set_context('{"user": "alice"}')""")
        conn.execute("UPDATE orders SET status = 'paid'")  # 100 events
        assert context_writes(conn) == (1, 0)
        conn.execute("UPDATE orders SET status = 'shipped'")  # same context: nothing to write
        assert context_writes(conn) == (1, 0)
        conn.execute("""SELECT pghistory.set_context('{"reason": "late"}')""")
        conn.execute("UPDATE orders SET status = 'delayed'")  # metadata changed: one update
        assert context_writes(conn) == (1, 1)
    assert value(conn, "SELECT count(DISTINCT pgh_context_id) FROM orders_event WHERE pgh_label = 'update'") == 1
    assert rows(conn, "SELECT metadata FROM pghistory.context") == [({"user": "alice", "reason": "late"},)]


def test_later_transaction_with_changed_metadata_updates_the_row(conn, orders):
    context_id = str(uuid.uuid4())
    for metadata in ('{"step": 1}', '{"step": 1}', '{"step": 2}'):
        with conn.transaction():
            conn.execute("SELECT set_config('pghistory.context_id', %s, true), "
                         "set_config('pghistory.context_metadata', %s, true)", (context_id, metadata))
            conn.execute("UPDATE orders SET status = status || '!' WHERE id = 1")
    assert rows(conn, "SELECT id::text, metadata, created_at < updated_at FROM pghistory.context") == [
        (context_id, {"step": 2}, True)]


@pytest.mark.parametrize("level", ["statement", "row"])
@pytest.mark.parametrize("owner", ["superuser", "plain role"])
def test_triggers_attach_the_context_once_per_trigger_call(conn, connect, make_role, level, owner):
    """The generated function reads the settings itself. A superuser's function writes the
    context row inline; another owner's calls _attach_context() (SECURITY DEFINER), once per
    trigger call either way: an INSERT that finds the row there, then _refresh_context(), which
    changes it only when the metadata differs. (No per-transaction marker: any role could set
    one, and skip the row.) No helper runs to find out that recording is on."""
    as_owner = conn
    if owner == "plain role":
        role = make_role("pgh_owner")
        conn.execute(f"GRANT CREATE ON SCHEMA public, pghistory TO {role}")
        as_owner = connect(user=role)
    as_owner.execute("CREATE TABLE orders (id int PRIMARY KEY, status text)")
    as_owner.execute("SELECT pghistory.track('orders', level => %s)", (level,))
    as_owner.execute("INSERT INTO orders SELECT g, 'new' FROM generate_series(1, 3) AS g")
    conn.execute("SET track_functions = 'all'")
    attach = owner == "plain role"

    def helper_calls() -> list[tuple[str, int]]:
        return rows(conn, """SELECT funcname::text, calls FROM pg_stat_xact_user_functions
                              WHERE schemaname = 'pghistory' AND funcname LIKE '\\_%%'
                              ORDER BY funcname""")

    with conn.transaction():
        conn.execute("""SELECT pghistory.set_context('{"user": "alice"}')""")
        conn.execute("UPDATE orders SET status = 'paid'")
        conn.execute("UPDATE orders SET status = 'shipped' WHERE id = 1")
        calls = 2 if level == "statement" else 4  # once per trigger call: per statement, or per row
        assert helper_calls() == [("_attach_context", calls)] * attach + [("_refresh_context", calls - 1)]
        assert context_writes(conn) == (1, 0)
        conn.execute("""SELECT pghistory.set_context('{"reason": "late"}')""")
        conn.execute("UPDATE orders SET status = 'delayed'")
        conn.execute("UPDATE orders SET status = 'delayed!'")
        total = calls + (2 if level == "statement" else 6)
        assert helper_calls() == sorted(
            [("_attach_context", total)] * attach
            + [("_context_metadata", 1),  # set_context() merging
               ("_refresh_context", total - 1)])
        assert context_writes(conn) == (1, 1)
    assert rows(conn, "SELECT metadata FROM pghistory.context") == [({"user": "alice", "reason": "late"},)]


def test_context_upsert_finds_existing_contexts_by_index_on_a_table_planned_empty(conn, orders):
    """The upsert's plans live as long as the connection: planned while pghistory.context was
    empty, they must still look contexts up by key, not scan a table that has since grown."""
    context_id = str(uuid.uuid4())
    conn.execute("LOAD 'auto_explain'")
    for setting in ("log_min_duration = 0", "log_nested_statements = on", "log_level = notice"):
        conn.execute(f"SET auto_explain.{setting}")
    plans: list[str] = []
    conn.add_notice_handler(lambda diag: plans.append(diag.message_primary or ""))
    for metadata in ('{"step": 1}', '{"step": 2}'):  # a new context, then the same one changed
        with conn.transaction():
            conn.execute("SELECT set_config('pghistory.context_id', %s, true), "
                         "set_config('pghistory.context_metadata', %s, true)", (context_id, metadata))
            conn.execute("UPDATE orders SET status = status || '!' WHERE id = 1")
    context_plans = [p for p in plans if "pghistory.context" in p and "Query Text" in p]
    assert any("UPDATE pghistory.context" in p for p in context_plans), plans
    assert not [p for p in context_plans if "Seq Scan" in p]
    assert rows(conn, "SELECT id::text, metadata FROM pghistory.context") == [(context_id, {"step": 2})]


def test_no_context_no_context_row(conn, orders):
    conn.execute("UPDATE orders SET status = 'paid' WHERE id = 1")
    assert value(conn, "SELECT pgh_context_id FROM orders_event WHERE pgh_label = 'update'") is None
    assert value(conn, "SELECT count(*) FROM pghistory.context") == 0


@pytest.mark.parametrize("level", ["statement", "row"])
def test_json_mode_stores_the_metadata_as_it_was_at_each_event(conn, level):
    conn.execute("CREATE TABLE t (id int PRIMARY KEY, v int)")
    conn.execute("SELECT pghistory.track('t', context => 'json', level => %s)", (level,))
    with conn.transaction():
        context_id = value(conn, """SELECT pghistory.set_context('{"user": "alice"}')""")
        conn.execute("INSERT INTO t VALUES (1, 1)")
        conn.execute("""SELECT pghistory.set_context('{"step": 2}')""")
        conn.execute("UPDATE t SET v = 2")
    conn.execute("DELETE FROM t")
    assert events(conn, "t_event", "pgh_label, pgh_context_id, pgh_context") == [
        ("insert", context_id, {"user": "alice"}),
        ("update", context_id, {"user": "alice", "step": 2}),
        ("delete", None, None)]
    assert value(conn, "SELECT count(*) FROM pghistory.context") == 0  # json mode keeps it in the events


def test_none_mode_has_no_context_columns(conn):
    conn.execute("CREATE TABLE t (id int PRIMARY KEY)")
    conn.execute("SELECT pghistory.track('t', context => 'none')")
    with conn.transaction():
        conn.execute("""SELECT pghistory.set_context('{"user": "alice"}')""")
        conn.execute("INSERT INTO t VALUES (1)")
    assert value(conn, """SELECT array_agg(attname::text ORDER BY attnum) FROM pg_attribute
                           WHERE attrelid = 't_event'::regclass AND attnum > 0""") == [
        "pgh_id", "pgh_created_at", "pgh_xact", "pgh_label", "pgh_obj_id", "id"]
    assert value(conn, "SELECT count(*) FROM pghistory.context") == 0


@pytest.mark.parametrize("metadata, kind", [("'[1, 2]'", "array"), ("'\"alice\"'", "string"), ("'null'", "null")])
def test_set_context_refuses_metadata_that_is_not_an_object(conn, metadata, kind):
    with pytest.raises(psycopg.errors.InvalidParameterValue) as info:
        conn.execute(f"SELECT pghistory.set_context({metadata})")
    assert info.value.diag.message_primary == f"pghistory.set_context: metadata must be a JSON object, not a JSON {kind}"
    assert value(conn, "SELECT pghistory.current_context_id()") is None


@pytest.mark.parametrize("level", ["statement", "row"])
@pytest.mark.parametrize("metadata, message", [
    ("not json", "pghistory.context_metadata must be a JSON object, not not json"),
    ("[1]", "pghistory.context_metadata must be a JSON object, not [1]"),
    ("{user: 1}", 'invalid input syntax for type json'),
])
def test_bad_metadata_on_the_guc_fails_the_write_and_loses_nothing(conn, level, metadata, message):
    conn.execute("CREATE TABLE t (id int PRIMARY KEY, v int)")
    conn.execute("SELECT pghistory.track('t', level => %s)", (level,))
    conn.execute("INSERT INTO t VALUES (1, 1)")
    conn.execute("SET pghistory.context_id = 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'")
    conn.execute("SET pghistory.context_metadata = %s" % psycopg.sql.quote(metadata))
    with pytest.raises((psycopg.errors.InvalidParameterValue, psycopg.errors.InvalidTextRepresentation)) as info:
        conn.execute("UPDATE t SET v = 2")
    assert info.value.diag.message_primary == message
    # the error rolled the write back: nothing changed, nothing half-recorded
    assert rows(conn, "SELECT id, v FROM t") == [(1, 1)]
    assert events(conn, "t_event") == [("insert", 1)]
    assert value(conn, "SELECT count(*) FROM pghistory.context") == 0


@pytest.mark.parametrize("level", ["statement", "row"])
@pytest.mark.parametrize("context_id", [
    "user-42",
    "-" * 36,                                  # the canonical shape, without a digit
    "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a1g",    # one character that is not hex
    "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11-",   # one too many
])
def test_bad_context_id_is_an_error(conn, level, context_id):
    conn.execute("CREATE TABLE orders (id int PRIMARY KEY, status text)")
    conn.execute("SELECT pghistory.track('orders', level => %s)", (level,))
    conn.execute("INSERT INTO orders VALUES (1, 'new')")
    conn.execute("SELECT set_config('pghistory.context_id', %s, false)", (context_id,))
    with pytest.raises(psycopg.errors.InvalidParameterValue) as info:
        conn.execute("UPDATE orders SET status = 'x' WHERE id = 1")
    assert info.value.diag.message_primary == f'pghistory.context_id is "{context_id}", which is not a uuid'
    assert value(conn, "SELECT status FROM orders WHERE id = 1") == "new"


@pytest.mark.parametrize("level", ["statement", "row"])
@pytest.mark.parametrize("context", ["fk", "json"])
def test_context_id_and_metadata_in_other_spellings_are_understood(conn, level, context):
    """The triggers read the usual spellings inline and leave the others to the helpers:
    every spelling uuid_in accepts, and metadata with blanks around the object."""
    conn.execute("CREATE TABLE orders (id int PRIMARY KEY, status text)")
    conn.execute("SELECT pghistory.track('orders', level => %s, context => %s)", (level, context))
    conn.execute("INSERT INTO orders VALUES (1, 'new')")
    context_id = "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"
    for spelling, metadata, status in [
        ("{A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11}", ' {"step": 1}', "a"),
        ("a0eebc999c0b4ef8bb6d6bb9bd380a11", '{"step": 2}\n', "b"),
        (context_id, "", "c"),
    ]:
        with conn.transaction():
            conn.execute("SELECT set_config('pghistory.context_id', %s, true), "
                         "set_config('pghistory.context_metadata', %s, true)", (spelling, metadata))
            conn.execute("UPDATE orders SET status = %s", (status,))
    assert rows(conn, "SELECT pgh_context_id::text, status FROM orders_event WHERE pgh_label = 'update' "
                      "ORDER BY pgh_id") == [(context_id, "a"), (context_id, "b"), (context_id, "c")]
    if context == "json":
        assert rows(conn, "SELECT pgh_context FROM orders_event WHERE pgh_label = 'update' ORDER BY pgh_id") == [
            ({"step": 1},), ({"step": 2},), ({},)]
    else:
        assert rows(conn, "SELECT id::text, metadata FROM pghistory.context") == [(context_id, {})]


def test_context_set_by_django_pghistory_style_gucs_is_understood(conn, orders):
    """django-pghistory sets the same two settings; a shared database gets one history."""
    context_id = str(uuid.uuid4())
    with conn.transaction():
        conn.execute("SELECT set_config('pghistory.context_id', %s, true)", (context_id,))
        conn.execute("""SELECT set_config('pghistory.context_metadata', '{"user": 1, "url": "/admin/"}', true)""")
        conn.execute("DELETE FROM orders WHERE id = 1")
    assert value(conn, "SELECT pgh_context_id::text FROM orders_event WHERE pgh_label = 'delete'") == context_id
    assert value(conn, "SELECT metadata FROM pghistory.context") == {"user": 1, "url": "/admin/"}


@pytest.mark.parametrize("level", ["statement", "row"])
@pytest.mark.parametrize("context", ["fk", "json"])
def test_columns_named_like_the_trigger_variables_do_not_replace_them(conn, level, context):
    """The generated functions resolve names to columns first (use_column): their own
    variables must be read as variables even when the tracked table has such columns."""
    conn.execute("""CREATE TABLE t (id int PRIMARY KEY, v_context_id uuid, v_context jsonb,
                                    v_context_setting text, v_metadata_setting text, v_metadata jsonb,
                                    v_attached text, found boolean)""")
    conn.execute("SELECT pghistory.track('t', level => %s, context => %s)", (level, context))
    context_id = value(conn, """SELECT pghistory.set_context('{"user": "alice"}', false)""")
    conn.execute("""INSERT INTO t VALUES (1, '00000000-0000-0000-0000-000000000000', '{"column": true}',
                                          'x', '{}', '{}', 'y', false)""")
    conn.execute("UPDATE t SET v_attached = 'z'")
    conn.execute("SELECT pghistory.clear_context()")
    assert rows(conn, "SELECT pgh_label, pgh_context_id, v_attached FROM t_event ORDER BY pgh_id") == [
        ("insert", context_id, "y"), ("update", context_id, "z")]
    if context == "json":
        assert rows(conn, "SELECT pgh_context FROM t_event") == [({"user": "alice"},)] * 2
    else:
        assert rows(conn, "SELECT id, metadata FROM pghistory.context") == [(context_id, {"user": "alice"})]
