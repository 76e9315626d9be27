"""Tables of every shape: odd names, keys, partitions and column types."""

from __future__ import annotations

import psycopg
import pytest

from sqlhelpers import events, rows, value


@pytest.fixture(params=["statement", "row"])
def level(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_identifiers_with_schemas_spaces_quotes_case_and_reserved_words(conn, level):
    table = '"Sales Dept"."Order ""Items"""'
    conn.execute('CREATE SCHEMA "Sales Dept"')
    conn.execute(f'CREATE TABLE {table} ("select" int PRIMARY KEY, "Mixed Case" text, "from" text)')
    event_table = value(conn, "SELECT pghistory.track(%s, level => %s)::text", table, level)
    assert event_table == '"Sales Dept"."Order ""Items""_event"'
    conn.execute(f"INSERT INTO {table} VALUES (1, 'a', 'b')")
    conn.execute(f"""UPDATE {table} SET "Mixed Case" = 'A', "select" = 2""")
    conn.execute(f"DELETE FROM {table}")
    assert events(conn, event_table, 'pgh_label, pgh_obj_id, "select", "Mixed Case", "from"') == [
        ("insert", 1, 1, "a", "b"), ("update", 2, 2, "A", "b"), ("delete", 2, 2, "A", "b")]
    assert value(conn, "SELECT count(*) FROM pg_proc WHERE proname LIKE %s", 'Sales Dept.Order "Items"/%') == 4


def test_long_names_are_fitted_into_identifiers(conn):
    name = "t" * 63
    conn.execute(f'CREATE TABLE "{name}" (id int PRIMARY KEY)')
    event_table = value(conn, f"SELECT pghistory.track('\"{name}\"', trackers => ARRAY[pghistory.insert_event(%s)])::text",
                        "l" * 63)
    assert len(event_table) == 63 and event_table.startswith("t" * 54 + "_")
    conn.execute(f'INSERT INTO "{name}" VALUES (1)')
    assert events(conn, f'"{event_table}"') == [("l" * 63, 1)]


def test_table_without_primary_key_is_tracked_with_null_obj_id(conn, level):
    conn.execute("CREATE TABLE log (a int, b text)")
    conn.execute("SELECT pghistory.track('log', level => %s)", (level,))
    conn.execute("INSERT INTO log VALUES (1, 'x'), (1, 'x'), (2, 'y')")
    conn.execute("UPDATE log SET b = 'z' WHERE a = 1")
    conn.execute("DELETE FROM log WHERE a = 2")
    assert value(conn, "SELECT format_type(atttypid, -1) FROM pg_attribute "
                       "WHERE attrelid = 'log_event'::regclass AND attname = 'pgh_obj_id'") == "text"
    assert events(conn, "log_event", "pgh_label, pgh_obj_id, a, b") == [
        ("insert", None, 1, "x"), ("insert", None, 1, "x"), ("insert", None, 2, "y"),
        ("update", None, 1, "z"), ("update", None, 1, "z"), ("delete", None, 2, "y")]


def test_composite_primary_key_is_tracked_with_the_key_as_a_json_array(conn):
    conn.execute("CREATE TABLE t (a int, b int, v text, PRIMARY KEY (a, b))")
    conn.execute("SELECT pghistory.track('t', trackers => ARRAY[pghistory.insert_event(), pghistory.manual_event('m')])")
    conn.execute("INSERT INTO t VALUES (1, 2, 'x')")
    conn.execute("SELECT pghistory.create_event('t', '[1, 2]', 'm')")
    assert events(conn, "t_event", "pgh_label, pgh_obj_id, a, b, v") == [
        ("insert", "[1, 2]", 1, 2, "x"), ("m", "[1, 2]", 1, 2, "x")]
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="is not a valid key of public.t"):
        conn.execute("SELECT pghistory.create_event('t', 1, 'm')")


def test_partitioned_table_is_tracked_at_the_root(conn, level):
    conn.execute("CREATE TABLE m (id int, region text, v int, PRIMARY KEY (id, region)) PARTITION BY LIST (region)")
    conn.execute("CREATE TABLE m_eu PARTITION OF m FOR VALUES IN ('eu')")
    conn.execute("CREATE TABLE m_us PARTITION OF m FOR VALUES IN ('us')")
    conn.execute("SELECT pghistory.track('m', level => %s)", (level,))
    conn.execute("INSERT INTO m VALUES (1, 'eu', 1), (2, 'us', 2)")
    conn.execute("INSERT INTO m_us VALUES (3, 'us', 3)")  # straight into a partition: still recorded
    conn.execute("UPDATE m SET region = 'us' WHERE id = 1")  # moves between partitions
    conn.execute("UPDATE m SET v = v + 10 WHERE id = 2")
    conn.execute("DELETE FROM m_us WHERE id = 3")
    conn.execute("TRUNCATE m")
    got = events(conn, "m_event", "pgh_label, id, region, v")
    assert got[:3] == [("insert", 1, "eu", 1), ("insert", 2, "us", 2), ("insert", 3, "us", 3)]
    if level == "statement":  # the root sees an update
        assert got[3:4] == [("update", 1, "us", 1)]
    else:  # row triggers see what each partition sees: the row leaves one and enters another
        assert got[3:5] == [("delete", 1, "eu", 1), ("insert", 1, "us", 1)]
        del got[3]
    assert got[4:6] == [("update", 2, "us", 12), ("delete", 3, "us", 3)]
    assert sorted(got[6:]) == [("truncate", 1, "us", 1), ("truncate", 2, "us", 12)]


def test_truncating_one_partition_records_only_its_rows(conn, level):
    conn.execute("CREATE TABLE m (id int PRIMARY KEY, v int) PARTITION BY RANGE (id)")
    conn.execute("CREATE TABLE m_low PARTITION OF m FOR VALUES FROM (0) TO (10)")
    conn.execute("CREATE TABLE m_high PARTITION OF m FOR VALUES FROM (10) TO (20)")
    conn.execute("SELECT pghistory.track('m', level => %s, trackers => ARRAY[pghistory.truncate_event()])",
                 (level,))
    conn.execute("INSERT INTO m VALUES (1, 1), (11, 11)")
    conn.execute("TRUNCATE m_high")
    assert events(conn, "m_event", "pgh_label, id") == [("truncate", 11)]


def test_column_types_round_trip(conn, level):
    conn.execute("CREATE TYPE mood AS ENUM ('sad', 'happy')")
    conn.execute("CREATE DOMAIN positive AS int CHECK (VALUE > 0)")
    conn.execute("""CREATE TABLE t (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        doc jsonb, raw json, tags text[], m mood, p positive, b bytea, pt point, x xml,
        price numeric(10, 2), at timestamptz, big text,
        doubled int GENERATED ALWAYS AS (p * 2) STORED)""")
    conn.execute("SELECT pghistory.track('t', level => %s)", (level,))
    big = "x" * 100_000  # stored out of line (TOAST)
    conn.execute("""INSERT INTO t (id, doc, raw, tags, m, p, b, pt, x, price, at, big) VALUES
        ('a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{"a": [1, 2]}', '{"b" : 1}', '{x,"y z"}', 'happy', 3,
         '\\x00ff', '(1,2)', '<a/>', 12.50, '2024-01-02 03:04:05+00', %s)""", (big,))
    conn.execute("UPDATE t SET raw = '{\"b\" : 2}'")  # json: compared as text
    conn.execute("UPDATE t SET pt = '(3,4)'")  # point: compared as text
    conn.execute("UPDATE t SET doc = '{\"a\": [1, 2]}'")  # same jsonb value: no event
    conn.execute("UPDATE t SET p = 4")
    conn.execute("DELETE FROM t")
    got = events(conn, "t_event", """pgh_label, pgh_obj_id::text, doc, raw::text, tags, m::text, p, b, pt::text,
                                     x::text, price, at, length(big), doubled""")
    assert [g[0] for g in got] == ["insert", "update", "update", "update", "delete"]
    first = got[0]
    assert first[1:8] == ("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", {"a": [1, 2]}, '{"b" : 1}', ["x", "y z"],
                          "happy", 3, b"\x00\xff")
    assert first[8:] == ("(1,2)", "<a/>", 12.50, first[11], 100_000, 6)
    assert str(first[11]).startswith("2024-01-02 03:04:05")
    assert got[-1][6] == 4 and got[-1][13] == 8 and got[-1][12] == 100_000
    assert rows(conn, """SELECT attname::text, format_type(atttypid, atttypmod) FROM pg_attribute
                          WHERE attrelid = 't_event'::regclass AND attname IN ('m', 'p', 'price', 'doubled')
                          ORDER BY attnum""") == [
        ("m", "mood"), ("p", "positive"), ("price", "numeric(10,2)"), ("doubled", "integer")]


def test_names_with_line_breaks(conn, level):
    conn.execute('CREATE TABLE "a\nb" ("x\ny" int PRIMARY KEY)')
    conn.execute("SELECT pghistory.track(%s, level => %s, trackers => ARRAY[pghistory.insert_event(%s)])",
                 ('"a\nb"', level, "new\nrow"))
    conn.execute('INSERT INTO "a\nb" VALUES (1)')
    assert events(conn, '"a\nb_event"', 'pgh_label, "x\ny"') == [("new\nrow", 1)]
