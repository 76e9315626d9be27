"""Row pairing and TRUNCATE of partitions: history is right by construction, not by an order
PostgreSQL does not promise, and costs what the statement touches (issue 11, items 7 and 8)."""

from __future__ import annotations

import re

import psycopg
import pytest

from sqlhelpers import events, rows, value


def test_composite_keys_pair_old_and_new_rows_on_every_key_column(conn):
    """A row whose key the UPDATE changed has no old version (as with a single-column key);
    pairing by position would have paired it with the row it was."""
    conn.execute("CREATE TABLE lines (order_id int, line int, item text, PRIMARY KEY (order_id, line))")
    conn.execute("""SELECT pghistory.track('lines', trackers => ARRAY[
        pghistory.update_event('moved', condition => 'OLD.order_id IS NULL'),
        pghistory.update_event('changed', condition => 'OLD.item IS DISTINCT FROM NEW.item')])""")
    conn.execute("INSERT INTO lines VALUES (1, 1, 'a'), (1, 2, 'b'), (2, 1, 'c')")
    conn.execute("UPDATE lines SET order_id = 3 WHERE (order_id, line) = (1, 2)")
    conn.execute("UPDATE lines SET item = item || '!'")
    assert events(conn, "lines_event", "pgh_label, order_id, line, item") == [
        ("changed", 3, 2, "b"), ("moved", 3, 2, "b"),
        ("changed", 1, 1, "a!"), ("changed", 2, 1, "c!"), ("changed", 3, 2, "b!")]
    source = value(conn, """SELECT pg_get_functiondef('pghistory."public.lines/changed"'::regproc)""")
    assert 'LEFT JOIN pgh_old_rows AS old ON old."order_id" = new."order_id" AND old."line" = new."line"' in source
    assert "row_number()" not in source


def test_tables_without_a_key_pair_by_position(conn):
    conn.execute("CREATE TABLE log (v text)")
    conn.execute("SELECT pghistory.track('log')")
    conn.execute("INSERT INTO log VALUES ('a'), ('b')")
    conn.execute("UPDATE log SET v = v || '!'")
    assert events(conn, "log_event", "pgh_label, v") == [("insert", "a"), ("insert", "b"),
                                                         ("update", "a!"), ("update", "b!")]
    source = value(conn, """SELECT pg_get_functiondef('pghistory."public.log/update"'::regproc)""")
    assert "row_number() OVER () AS pgh_row" in source


@pytest.mark.parametrize("context", ["fk", "json", "none"])
def test_truncate_of_a_partitioned_table_reads_each_partition_once(conn, context):
    conn.execute("CREATE TABLE m (id int PRIMARY KEY, v text) PARTITION BY RANGE (id)")
    for n in range(3):
        conn.execute(f"CREATE TABLE m{n} PARTITION OF m FOR VALUES FROM ({n * 10}) TO ({n * 10 + 10})")
    conn.execute("SELECT pghistory.track('m', context => %s)", (context,))
    conn.execute("INSERT INTO m SELECT g, 'x' FROM generate_series(0, 29, 7) AS g")
    plans: list[str] = []
    conn.execute("LOAD 'auto_explain'")
    for setting in ("log_min_duration = 0", "log_nested_statements = on", "log_level = notice"):
        conn.execute(f"SET auto_explain.{setting}")
    conn.add_notice_handler(lambda d: plans.append(d.message_primary or ""))
    with conn.transaction():
        context_id = value(conn, """SELECT pghistory.set_context('{"why": "reset"}')""")
        conn.execute("TRUNCATE m")
    conn.execute("RESET auto_explain.log_min_duration")
    # each partition's trigger reads that partition alone: three scans, not three of the whole tree
    assert sorted(re.findall(r"Scan on (m\d)", "\n".join(plans))) == ["m0", "m1", "m2"]
    expected_context = None if context == "none" else context_id
    columns = "pgh_label, id" + (", pgh_context_id" if context != "none" else "")
    assert events(conn, "m_event", columns)[-5:] == [
        ("truncate", i) + ((expected_context,) if context != "none" else ()) for i in (0, 7, 14, 21, 28)]
    if context == "fk":
        assert rows(conn, "SELECT metadata FROM pghistory.context") == [({"why": "reset"},)]
    if context == "json":
        assert value(conn, "SELECT count(*) FROM m_event WHERE pgh_context = '{\"why\": \"reset\"}'") == 5
