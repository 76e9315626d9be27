"""A partitioned table's TRUNCATE function records through format() and EXECUTE:
names holding ``%`` reach format() as text, not as format specifiers."""

from __future__ import annotations

from sqlhelpers import rows


def test_truncate_of_a_partition_with_percent_in_its_names(conn):
    conn.execute('CREATE TABLE "100%" (id int PRIMARY KEY, "a%s" text, "b%I%%" int) PARTITION BY RANGE (id)')
    conn.execute('CREATE TABLE "100%_1%" PARTITION OF "100%" FOR VALUES FROM (0) TO (10)')
    conn.execute("""SELECT pghistory.track('"100%"', trackers => ARRAY[pghistory.truncate_event()],
                                           event_table => '"ev%I"')""")
    conn.execute("""INSERT INTO "100%" VALUES (1, 'x', 2), (3, NULL, NULL)""")
    conn.execute('TRUNCATE "100%"')
    assert rows(conn, 'SELECT pgh_label, pgh_obj_id, id, "a%s", "b%I%%" FROM "ev%I" ORDER BY id') == [
        ("truncate", 1, 1, "x", 2), ("truncate", 3, 3, None, None)]
