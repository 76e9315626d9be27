"""pghistory.enabled = off is honoured only for sessions that could skip the triggers anyway
(README, "Security model"): the table owner's login, its members, superusers. Any other writer's
statement under it fails and writes nothing, at both levels and for TRUNCATE."""

from __future__ import annotations

import psycopg
import pytest
from psycopg import sql

from sqlhelpers import rows, value


@pytest.fixture
def shop(conn, make_role, connect):
    owner, writer, member = make_role("owner"), make_role("writer"), make_role("member")
    for schema in ("public", "pghistory"):
        conn.execute(sql.SQL("GRANT CREATE ON SCHEMA {} TO {}").format(sql.Identifier(schema), sql.Identifier(owner)))
    conn.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(owner), sql.Identifier(member)))
    o = connect(user=owner)
    for table, level in (("orders", "statement"), ("lines", "row")):
        o.execute(sql.SQL("CREATE TABLE {} (id int PRIMARY KEY, v text)").format(sql.Identifier(table)))
        o.execute("SELECT pghistory.track(%s, level => %s)", [table, level])
        o.execute(sql.SQL("GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON {} TO {}").format(
            sql.Identifier(table), sql.Identifier(writer)))
    o.execute("INSERT INTO orders VALUES (1, 'a')")
    o.execute("INSERT INTO lines VALUES (1, 'a')")
    return {"owner": o, "writer": connect(user=writer), "member": connect(user=member), "su": conn}


@pytest.mark.parametrize("table", ["orders", "lines"])
@pytest.mark.parametrize("write", ["INSERT INTO {} VALUES (2, 'b')", "UPDATE {} SET v = 'c'", "DELETE FROM {}",
                                   "TRUNCATE {}"])
def test_a_writer_cannot_write_unrecorded(shop, table, write):
    w, su = shop["writer"], shop["su"]
    before = rows(su, sql.SQL("SELECT * FROM {} ORDER BY id").format(sql.Identifier(table)))
    events = value(su, sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table + "_event")))
    w.execute("SET pghistory.enabled = off")
    with pytest.raises(psycopg.errors.InsufficientPrivilege,
                       match=r"^pghistory: writer_\w+ may not write without history \(pghistory.enabled is off\)\n") as exc:
        w.execute(sql.SQL(write).format(sql.Identifier(table)))
    assert "owner of the tracked table" in exc.value.diag.message_detail
    assert exc.value.diag.message_hint == "RESET pghistory.enabled to write with history, or write as the table's owner."
    assert rows(su, sql.SQL("SELECT * FROM {} ORDER BY id").format(sql.Identifier(table))) == before
    assert value(su, sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table + "_event"))) == events
    # with recording on, the same write goes through and is recorded
    w.execute("RESET pghistory.enabled")
    w.execute(sql.SQL(write).format(sql.Identifier(table)))


@pytest.mark.parametrize("who", ["owner", "member", "su"])
def test_the_owner_its_members_and_superusers_write_unrecorded(shop, who):
    c = shop[who]
    if who == "member":
        c.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(value(shop["owner"], "SELECT current_user"))))
    with c.transaction():
        c.execute("SET LOCAL pghistory.enabled = off")
        c.execute("INSERT INTO orders VALUES (2, 'b')")
        c.execute("INSERT INTO lines VALUES (2, 'b')")
    su = shop["su"]
    assert value(su, "SELECT count(*) FROM orders") == 2
    assert rows(su, "SELECT pgh_label, id FROM orders_event") == [("insert", 1)]
    assert rows(su, "SELECT pgh_label, id FROM lines_event") == [("insert", 1)]
