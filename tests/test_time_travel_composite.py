"""Composite primary keys as object identities: pgh_obj_id is the key as a JSON array, in key order
('[1, "a"]'), and every function that names an object takes it (plain and partitioned tables)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg
import pytest

from sqlhelpers import rows, value


@pytest.fixture(params=["statement", "row"])
def level(request: pytest.FixtureRequest) -> str:
    """Every behaviour here holds at both trigger levels."""
    return str(request.param)


@pytest.fixture(params=["plain", "partitioned"])
def lines(request: pytest.FixtureRequest, conn: psycopg.Connection, level: str) -> dict[str, datetime]:
    """lines keyed by (order_id, line), plain or partitioned by order_id, with a history: t1 two rows
    inserted, t2 one updated, t3 one deleted."""
    if request.param == "plain":
        conn.execute("CREATE TABLE lines (order_id int, line text, qty int, PRIMARY KEY (order_id, line))")
    else:
        conn.execute("CREATE TABLE lines (order_id int, line text, qty int, PRIMARY KEY (order_id, line))"
                     " PARTITION BY LIST (order_id)")
        conn.execute("CREATE TABLE lines_1 PARTITION OF lines FOR VALUES IN (1)")
        conn.execute("CREATE TABLE lines_2 PARTITION OF lines FOR VALUES IN (2)")
    conn.execute("""SELECT pghistory.track('lines', level => %s, trackers => ARRAY[
        pghistory.insert_event(), pghistory.update_event(), pghistory.delete_event(), pghistory.truncate_event(),
        pghistory.manual_event('checked')])""", (level,))
    conn.execute("INSERT INTO lines VALUES (1, 'a', 5), (2, 'b', 6)")
    t = {"t1": value(conn, "SELECT clock_timestamp()")}
    conn.execute("UPDATE lines SET qty = 7 WHERE line = 'a'")
    t["t2"] = value(conn, "SELECT clock_timestamp()")
    conn.execute("DELETE FROM lines WHERE line = 'b'")
    t["t3"] = value(conn, "SELECT clock_timestamp()")
    return t


def error(conn: psycopg.Connection, query: str, *params: Any) -> tuple[str, str]:
    with pytest.raises(psycopg.Error) as info:
        conn.execute(query, params or None)
    return info.value.sqlstate or "", info.value.diag.message_primary or ""


def test_the_identity_is_the_key_as_a_json_array_and_is_indexed(conn, lines):
    assert rows(conn, "SELECT pgh_obj_id, pgh_label FROM lines_event ORDER BY pgh_id") == [
        ('[1, "a"]', "insert"), ('[2, "b"]', "insert"), ('[1, "a"]', "update"), ('[2, "b"]', "delete")]
    assert value(conn, "SELECT format_type(atttypid, atttypmod) FROM pg_attribute"
                       " WHERE attrelid = 'lines_event'::regclass AND attname = 'pgh_obj_id'") == "text"
    assert value(conn, "SELECT indexdef FROM pg_indexes WHERE tablename = 'lines_event' AND indexdef LIKE '%pgh_obj_id%'"
                 ).endswith("(pgh_obj_id, pgh_id)")


def test_events_and_diffs_of_one_object_however_its_key_is_spelt(conn, lines):
    expected = [("insert", None), ("update", {"qty": [5, 7]})]
    for spelling in ("'[1, \"a\"]'", "'[1,\"a\"]'", "'[\"1\", \"a\"]'", "'[1, \"a\"]'::jsonb", "jsonb_build_array(1, 'a')"):
        assert rows(conn, f"SELECT pgh_label, pgh_diff FROM pghistory.events('lines', obj_id => {spelling})"
                    " ORDER BY pgh_id") == expected, spelling
    assert rows(conn, "SELECT pgh_label, pgh_diff FROM pghistory.events('lines', obj_id => '[2, \"b\"]')"
                " ORDER BY pgh_id") == [("insert", None), ("delete", {})]
    assert rows(conn, "SELECT * FROM pghistory.events('lines', obj_id => '[3, \"a\"]')") == []


def test_a_key_that_is_no_json_array_of_the_key_is_refused(conn, lines):
    for bad in ("1", "[1]", "[1, \"a\", 2]", "[\"x\", \"a\"]", "{\"order_id\": 1}", "not json"):
        for call in (f"SELECT * FROM pghistory.events('lines', obj_id => '{bad}')",
                     f"SELECT * FROM pghistory.as_of(NULL::lines, now(), '{bad}'::text)",
                     f"SELECT * FROM pghistory.blame('lines', '{bad}'::text)",
                     f"SELECT pghistory.create_event('lines', '{bad}', 'checked')"):
            assert error(conn, call) == (
                "22023", f"pghistory: obj_id '{bad}' is not a valid key of public.lines (a JSON array of order_id, line)"
            ), call


def test_as_of_one_object_blame_and_changes(conn, lines):
    assert rows(conn, "SELECT * FROM pghistory.as_of(NULL::lines, %s, '[1, \"a\"]'::text)", lines["t1"]) == [(1, "a", 5)]
    assert rows(conn, "SELECT * FROM pghistory.as_of(NULL::lines, %s, '[2, \"b\"]'::text)", lines["t2"]) == [(2, "b", 6)]
    assert rows(conn, "SELECT * FROM pghistory.as_of(NULL::lines, %s, '[2, \"b\"]'::text)", lines["t3"]) == []
    assert rows(conn, "SELECT * FROM pghistory.as_of(NULL::lines, %s) ORDER BY 1", lines["t2"]) == [
        (1, "a", 7), (2, "b", 6)]
    assert rows(conn, "SELECT \"column\", value, pgh_label FROM pghistory.blame('lines', '[1, \"a\"]'::text)") == [
        ("order_id", 1, "insert"), ("line", "a", "insert"), ("qty", 7, "update")]
    assert rows(conn, "SELECT * FROM pghistory.changes('lines', %s, NULL)", lines["t1"]) == [
        ('[1, "a"]', "updated", {"qty": [5, 7]}), ('[2, "b"]', "deleted", {"qty": [6, None], "line": ["b", None],
                                                                           "order_id": [2, None]})]


def test_create_event_and_revert_name_the_row_by_its_key(conn, lines):
    checked = value(conn, "SELECT pghistory.create_event('lines', '[1,\"a\"]', 'checked')")
    assert rows(conn, "SELECT pgh_obj_id, pgh_label, qty FROM lines_event WHERE pgh_id = %s", checked) == [
        ('[1, "a"]', "checked", 7)]
    assert error(conn, "SELECT pghistory.create_event('lines', '[1, \"z\"]', 'checked')") == (
        "P0002", "pghistory: public.lines has no row with (order_id, line) = '[1, \"z\"]'")
    first = value(conn, "SELECT min(pgh_id) FROM lines_event WHERE pgh_obj_id = '[1, \"a\"]'")
    written = value(conn, "SELECT pghistory.revert('lines_event', %s)", first)
    assert rows(conn, "SELECT * FROM lines ORDER BY 1") == [(1, "a", 5)]
    assert rows(conn, "SELECT pgh_obj_id, pgh_label, pgh_diff FROM pghistory.events('lines', obj_id => '[1, \"a\"]')"
                " WHERE pgh_id = %s", written) == [('[1, "a"]', "update", {"qty": [7, 5]})]
    deleted = value(conn, "SELECT max(pgh_id) FROM lines_event WHERE pgh_obj_id = '[2, \"b\"]' AND pgh_label = 'insert'")
    conn.execute("SELECT pghistory.revert('lines_event', %s)", (deleted,))
    assert rows(conn, "SELECT * FROM lines ORDER BY 1") == [(1, "a", 5), (2, "b", 6)]


def test_revert_context_takes_back_writes_to_a_composite_key_table(conn, lines):
    with conn.transaction():
        ctx = value(conn, "SELECT pghistory.set_context('{\"url\": \"/r\"}')")
        conn.execute("UPDATE lines SET qty = 9 WHERE line = 'a'")
        conn.execute("INSERT INTO lines VALUES (2, 'c', 1)")
    conn.execute("SELECT pghistory.clear_context()")
    assert rows(conn, "SELECT event_table::text, obj_id, action FROM pghistory.revert_context(%s, dry_run => true)"
                " ORDER BY obj_id", ctx) == [("lines_event", '[1, "a"]', "update"), ("lines_event", '[2, "c"]', "delete")]
    conn.execute("SELECT * FROM pghistory.revert_context(%s)", (ctx,))
    assert rows(conn, "SELECT * FROM lines ORDER BY 1") == [(1, "a", 7)]


def test_a_key_change_starts_the_history_of_the_new_key(conn, lines):
    conn.execute("UPDATE lines SET line = 'z' WHERE line = 'a'")
    assert rows(conn, "SELECT pgh_label, pgh_data, pgh_diff FROM pghistory.events('lines', obj_id => '[1, \"z\"]')") == [
        ("update", {"order_id": 1, "line": "z", "qty": 7}, None)]
    assert [r[0] for r in rows(conn, "SELECT pgh_label FROM pghistory.events('lines', obj_id => '[1, \"a\"]')"
                                     " ORDER BY pgh_id")] == ["insert", "update"]
    # (into another partition, at row level, PostgreSQL runs it as a delete and an insert)
    conn.execute("UPDATE lines SET order_id = 2 WHERE line = 'z'")
    assert rows(conn, "SELECT * FROM pghistory.as_of(NULL::lines, now() + interval '1 day')") == [(2, "z", 7)]
    assert rows(conn, "SELECT pgh_data FROM pghistory.events('lines', obj_id => '[2, \"z\"]')") == [
        ({"order_id": 2, "line": "z", "qty": 7},)]


def test_truncate_records_each_row_under_its_identity(conn, lines):
    conn.execute("INSERT INTO lines VALUES (2, 'b', 8)")
    conn.execute("TRUNCATE lines")
    assert rows(conn, "SELECT pgh_obj_id, pgh_diff FROM pghistory.events('lines', labels => '{truncate}')"
                " ORDER BY pgh_obj_id") == [('[1, "a"]', {}), ('[2, "b"]', {})]
    assert rows(conn, "SELECT * FROM pghistory.as_of(NULL::lines, now() + interval '1 day')") == []


def test_an_upgrade_from_0_1_0_names_the_events_of_composite_key_tables(pg, empty_db):
    """0.1.0 left pgh_obj_id NULL for a composite key; the update fills it from the key columns recorded."""
    from test_upgrade import Release

    made = Release(pg, "0.1.0")
    try:
        with pg.connect(empty_db) as c:
            c.execute("CREATE EXTENSION pghistory VERSION '0.1.0'")
            c.execute("CREATE TABLE lines (order_id int, line text, qty int, PRIMARY KEY (order_id, line))")
            c.execute("SELECT pghistory.track('lines')")
            c.execute("INSERT INTO lines VALUES (1, 'a', 5), (2, 'b', 6)")
            c.execute("UPDATE lines SET qty = 7 WHERE line = 'a'")
            assert rows(c, "SELECT count(*) FROM lines_event WHERE pgh_obj_id IS NULL") == [(3,)]
            c.execute("ALTER EXTENSION pghistory UPDATE")
            assert rows(c, "SELECT pgh_obj_id, pgh_label FROM lines_event ORDER BY pgh_id") == [
                ('[1, "a"]', "insert"), ('[2, "b"]', "insert"), ('[1, "a"]', "update")]
            c.execute("UPDATE lines SET qty = 8 WHERE line = 'a'")
            assert rows(c, "SELECT pgh_label, pgh_diff FROM pghistory.events('lines', obj_id => '[1, \"a\"]')"
                        " ORDER BY pgh_id") == [("insert", None), ("update", {"qty": [5, 7]}), ("update", {"qty": [7, 8]})]
    finally:
        made.remove()


@pytest.mark.parametrize("key", ["single", "composite"])
def test_changes_and_as_of_of_a_few_objects_find_the_rows_by_their_key_index(conn, key):
    if key == "single":
        conn.execute("CREATE TABLE wide (id int PRIMARY KEY, qty int)")
        conn.execute("INSERT INTO wide SELECT g, 0 FROM generate_series(1, 5000) AS g")
        one, expected = "7", "7"
    else:
        conn.execute("CREATE TABLE wide (a int, b text, qty int, PRIMARY KEY (a, b))")
        conn.execute("INSERT INTO wide SELECT g, 'x', 0 FROM generate_series(1, 5000) AS g")
        one, expected = '[7, "x"]', '[7, "x"]'
    conn.execute("SELECT pghistory.track('wide')")
    conn.execute("SELECT pghistory.backfill('wide')")
    conn.execute("VACUUM ANALYZE wide")
    t = value(conn, "SELECT clock_timestamp()")
    conn.execute("UPDATE wide SET qty = 1 WHERE qty = 0 AND %s" % ("id = 7" if key == "single" else "a = 7"))
    # the reads this backend counted and has not reported yet: before and after, in one transaction
    reads = "SELECT seq_tup_read, idx_scan FROM pg_stat_xact_user_tables WHERE relid = 'wide'::regclass"
    with conn.transaction():
        seq_before, idx_before = rows(conn, reads)[0]
        assert rows(conn, "SELECT obj_id, diff FROM pghistory.changes('wide', %s)", t) == [
            (expected, {"qty": [0, 1]})]
        assert len(rows(conn, "SELECT * FROM pghistory.as_of(NULL::wide, %s, %s::text)", t, one)) == 1
        seq_after, idx_after = rows(conn, reads)[0]
    assert seq_after == seq_before and idx_after > idx_before  # no row read but through the key's index
