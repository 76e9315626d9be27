"""The security model as a matrix: roles x actions, each cell a test, and the README's table in
section "Security model" rendered from the same MATRIX, so the two cannot drift (issue 11)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from sqlhelpers import rows, value

ROLES = ["superuser", "extension owner", "table owner", "writer", "reader", "no grants"]

# action -> (what the role may do, per role in ROLES order). "yes" and "no" are checked as such;
# other words say how far "yes" goes, and the test of the cell checks exactly that.
MATRIX: dict[str, list[str]] = {
    "track the table": ["yes", "no", "yes", "no", "no", "no"],
    "untrack the table": ["yes", "no", "yes", "no", "no", "no"],
    "distribute the table (Citus, distribute())": ["on Citus", "no", "on Citus", "no", "no", "no"],
    "write the table (history recorded)": ["yes", "no", "yes", "yes", "no", "no"],
    "write the table unrecorded (pghistory.enabled = off)": ["yes", "no", "yes", "no", "no", "no"],
    "read history: the event table": ["yes", "no", "yes", "no", "yes", "no"],
    "read history: events()": ["yes", "no", "yes", "no", "yes", "no"],
    "read history: aggregate_events": ["yes", "none shown", "yes", "none shown", "yes", "none shown"],
    "create a context row without writing a tracked table":
        ["yes", "yes", "through _attach_context", "no", "no", "no"],
    "change another role's context row": ["yes", "yes", "no", "no", "no", "no"],
    "change history": ["with allow_history_changes", "no", "with allow_history_changes", "no", "no", "no"],
    "change the registry directly": ["yes", "yes", "no", "no", "no", "no"],
    "alter the table (history follows)": ["yes", "no", "yes", "no", "no", "no"],
    "give the table to another role (history follows)": ["yes", "no", "yes", "no", "no", "no"],
    "set retention, prune history": ["yes", "no", "yes", "no", "no", "no"],
    "redact history": ["yes", "no", "yes", "no", "no", "no"],
    "maintain(), reset_identities()":
        ["yes", "none touched", "yes", "none touched", "none touched", "none touched"],
}

README = Path(__file__).resolve().parents[1] / "README.md"


def matrix_table() -> str:
    """The README's table: one row per action, one column per role."""
    lines = ["| action | " + " | ".join(ROLES) + " |", "|---" * (len(ROLES) + 1) + "|"]
    lines += [f"| {action} | " + " | ".join(cells) + " |" for action, cells in MATRIX.items()]
    return "\n".join(lines)


def test_the_readme_shows_the_matrix_the_tests_check():
    text = README.read_text()
    section = text[text.index("## Security model"):]
    assert matrix_table() in section[:section.index("\n## ", 1)]


@dataclass
class World:
    """A database where the extension's owner is not a superuser, with orders owned by a
    table owner and tracked, a writer, a reader and a role with no grants."""

    su: psycopg.Connection
    roles: dict[str, str]
    context_id: uuid.UUID
    connect: Callable[[str], psycopg.Connection]

    def as_(self, role: str) -> psycopg.Connection:
        return self.su if role == "superuser" else self.connect(self.roles[role])


@pytest.fixture
def world(pg, empty_db, make_role) -> Iterator[World]:
    names = {r: make_role("pgh_" + r.replace(" ", "_")[:10]) for r in ROLES[1:]}
    opened: list[psycopg.Connection] = []

    def connect(user: str | None = None) -> psycopg.Connection:
        c = psycopg.connect(pg.dsn(empty_db, user=user), autocommit=True)
        opened.append(c)
        return c

    su = connect()
    su.execute(sql.SQL("GRANT CREATE ON DATABASE {} TO {}").format(
        sql.Identifier(empty_db), sql.Identifier(names["extension owner"])))
    su.execute(sql.SQL("GRANT CREATE ON SCHEMA public TO {}").format(sql.Identifier(names["table owner"])))
    ext = connect(names["extension owner"])
    ext.execute("SET client_min_messages = error")
    ext.execute("CREATE EXTENSION pghistory")
    su.execute("SELECT pghistory.install_event_triggers()")
    ext.execute(sql.SQL("GRANT CREATE ON SCHEMA pghistory TO {}").format(sql.Identifier(names["table owner"])))
    ext.execute(sql.SQL("GRANT SELECT ON pghistory.context TO {}").format(sql.Identifier(names["reader"])))
    # a role to give orders to, that every other role is a member of (PostgreSQL's
    # rule for ALTER ... OWNER TO), so that only being the table's owner decides
    names["heir"] = make_role("pgh_heir")
    su.execute(sql.SQL("GRANT CREATE ON SCHEMA public TO {}").format(sql.Identifier(names["heir"])))
    ext.execute(sql.SQL("GRANT CREATE ON SCHEMA pghistory TO {}").format(sql.Identifier(names["heir"])))
    su.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(names["heir"]),
                                               sql.SQL(", ").join(sql.Identifier(names[r]) for r in ROLES[1:])))
    owner = connect(names["table owner"])
    owner.execute("CREATE TABLE orders (id int PRIMARY KEY, status text)")
    owner.execute("SELECT pghistory.track('orders')")
    owner.execute(sql.SQL("GRANT SELECT, INSERT, UPDATE, DELETE ON orders TO {}").format(
        sql.Identifier(names["writer"])))
    owner.execute(sql.SQL("GRANT SELECT ON orders_event TO {}").format(sql.Identifier(names["reader"])))
    with su.transaction():  # a context that belongs to the superuser (created_by)
        context_id = value(su, """SELECT pghistory.set_context('{"by": "admin"}')""")
        su.execute("INSERT INTO orders VALUES (1, 'new')")
    yield World(su, names, context_id, connect)
    for c in opened:
        c.close()


def allowed(run: Callable[[], object]) -> bool:
    """Whether an action runs; refusals are privilege errors (or pghistory's own refusals)."""
    try:
        run()
    except psycopg.errors.InsufficientPrivilege:
        return False
    return True


def check_track(w: World, c: psycopg.Connection) -> str:
    ok = allowed(lambda: c.execute("SELECT pghistory.track('orders', level => 'row')"))
    assert value(w.su, "SELECT level FROM pghistory.tracked") == ("row" if ok else "statement")
    return "yes" if ok else "no"


def check_untrack(w: World, c: psycopg.Connection) -> str:
    ok = allowed(lambda: c.execute("SELECT pghistory.untrack('orders')"))
    assert value(w.su, "SELECT count(*) FROM pghistory.tracked") == (0 if ok else 1)
    return "yes" if ok else "no"


def check_distribute(w: World, c: psycopg.Connection) -> str:
    """Past the owner check, distribute() needs Citus, which these servers do not have
    (tests/test_citus.py distributes on a cluster)."""
    try:
        c.execute("SELECT pghistory.distribute('orders', 'id')")
    except psycopg.errors.InsufficientPrivilege:
        verdict = "no"
    except psycopg.errors.FeatureNotSupported as exc:
        assert str(exc).startswith("pghistory: distribute() needs Citus, which is not installed")
        verdict = "on Citus"
    assert value(w.su, "SELECT count(*) FROM pghistory.tracked WHERE tracked_table = 'orders'::regclass") == 1
    return verdict


def check_write(w: World, c: psycopg.Connection) -> str:
    ok = allowed(lambda: c.execute("INSERT INTO orders VALUES (2, 'new')"))
    assert rows(w.su, "SELECT pgh_label, id FROM orders_event ORDER BY pgh_id") == (
        [("insert", 1), ("insert", 2)] if ok else [("insert", 1)])
    return "yes" if ok else "no"


def check_write_unrecorded(w: World, c: psycopg.Connection) -> str:
    def write() -> None:
        with c.transaction():
            c.execute("SET LOCAL pghistory.enabled = off")
            c.execute("INSERT INTO orders VALUES (2, 'new')")
    ok = allowed(write)
    assert value(w.su, "SELECT count(*) FROM orders") == (2 if ok else 1)
    assert rows(w.su, "SELECT pgh_label, id FROM orders_event ORDER BY pgh_id") == [("insert", 1)]
    return "yes" if ok else "no"


def check_read_event_table(w: World, c: psycopg.Connection) -> str:
    ok = allowed(lambda: c.execute("SELECT pgh_label, id FROM orders_event").fetchall() == [("insert", 1)] or 1 / 0)
    return "yes" if ok else "no"


def check_read_events(w: World, c: psycopg.Connection) -> str:
    ok = allowed(lambda: [r[0] for r in c.execute("SELECT pgh_label FROM pghistory.events('orders')")] == ["insert"]
                 or 1 / 0)
    return "yes" if ok else "no"


def check_read_aggregate(w: World, c: psycopg.Connection) -> str:
    found = value(c, "SELECT count(*) FROM pghistory.aggregate_events")
    assert found in (0, 1)
    return "yes" if found == 1 else "none shown"


def check_create_context(w: World, c: psycopg.Connection) -> str:
    inserted = allowed(lambda: c.execute("INSERT INTO pghistory.context (id) VALUES (gen_random_uuid())"))
    attached = allowed(lambda: c.execute("SELECT pghistory._attach_context(gen_random_uuid(), '{}')"))
    assert value(w.su, "SELECT count(*) FROM pghistory.context") == 1 + inserted + attached
    return "yes" if inserted else "through _attach_context" if attached else "no"


def check_change_context(w: World, c: psycopg.Connection) -> str:
    def change() -> None:
        c.execute("UPDATE pghistory.context SET metadata = '{\"by\": \"forged\"}'")
    changed = allowed(change)
    # also through the functions and the triggers: never
    for step in [lambda: c.execute("SELECT pghistory._attach_context(%s, '{\"by\": \"forged\"}')", (w.context_id,)),
                 lambda: c.execute(f"""SET pghistory.context_id = '{w.context_id}';
                                       SET pghistory.context_metadata = '{{"by": "forged"}}';
                                       UPDATE orders SET status = 'x'""")]:
        allowed(step)
    c.execute("RESET pghistory.context_id; RESET pghistory.context_metadata")
    assert value(w.su, "SELECT metadata FROM pghistory.context") == ({"by": "forged"} if changed else {"by": "admin"})
    return "yes" if changed else "no"


def check_change_history(w: World, c: psycopg.Connection) -> str:
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        c.execute("DELETE FROM orders_event")

    def maintenance() -> None:
        with c.transaction():
            c.execute("SET LOCAL pghistory.allow_history_changes = on")
            c.execute("DELETE FROM orders_event")
    ok = allowed(maintenance)
    assert value(w.su, "SELECT count(*) FROM orders_event") == (0 if ok else 1)
    return "with allow_history_changes" if ok else "no"


def check_change_registry(w: World, c: psycopg.Connection) -> str:
    ok = allowed(lambda: c.execute("UPDATE pghistory.tracked SET append_only = false"))
    assert value(w.su, "SELECT append_only FROM pghistory.tracked") is (not ok)
    return "yes" if ok else "no"


def check_alter(w: World, c: psycopg.Connection) -> str:
    ok = allowed(lambda: c.execute("ALTER TABLE orders ADD COLUMN note text"))
    if ok:
        w.as_("table owner").execute("INSERT INTO orders VALUES (3, 'new', 'rush')")
        assert rows(w.su, "SELECT id, note FROM orders_event ORDER BY pgh_id") == [(1, None), (3, "rush")]
    return "yes" if ok else "no"


def check_give_away(w: World, c: psycopg.Connection) -> str:
    heir = w.roles["heir"]
    ok = allowed(lambda: c.execute(sql.SQL("ALTER TABLE orders OWNER TO {}").format(sql.Identifier(heir))))
    # the table, its event table and its trigger functions have one owner, before and after
    assert rows(w.su, """
        SELECT pg_get_userbyid(relowner)::text FROM pg_class WHERE oid IN ('orders'::regclass, 'orders_event'::regclass)
         UNION
        SELECT pg_get_userbyid(p.proowner)::text FROM pg_proc AS p JOIN pg_trigger AS g ON g.tgfoid = p.oid
         WHERE g.tgrelid = 'orders'::regclass""") == [(heir if ok else w.roles["table owner"],)]
    return "yes" if ok else "no"


def check_retention(w: World, c: psycopg.Connection) -> str:
    ok = allowed(lambda: c.execute("SELECT pghistory.prune('orders', now() + interval '1 day', keep_latest => false)"))
    assert value(w.su, "SELECT count(*) FROM orders_event") == (0 if ok else 1)
    assert allowed(lambda: c.execute("SELECT pghistory.set_retention('orders', interval '1 day')")) is ok
    assert value(w.su, "SELECT count(*) FROM pghistory.history_policy") == (1 if ok else 0)
    return "yes" if ok else "no"


def check_redact(w: World, c: psycopg.Connection) -> str:
    ok = allowed(lambda: c.execute("SELECT pghistory.redact('orders', 1, columns => '{status}')"))
    assert rows(w.su, "SELECT status FROM orders_event") == [(None,) if ok else ("new",)]
    assert value(w.su, "SELECT count(*) FROM pghistory.redaction") == (1 if ok else 0)
    return "yes" if ok else "no"


def check_maintain(w: World, c: psycopg.Connection) -> str:
    owner = w.as_("table owner")
    owner.execute("SELECT pghistory.set_retention('orders', interval '1 day', keep_latest => false)")
    with w.su.transaction():
        w.su.execute("SET LOCAL pghistory.allow_history_changes = on")
        w.su.execute("UPDATE orders_event SET pgh_created_at = now() - interval '2 days'")
        w.su.execute("SELECT setval('pghistory.event_id_seq', 1, false)")
    reset = rows(c, "SELECT event_table::text FROM pghistory.reset_identities()")
    maintained = rows(c, "SELECT event_table::text, events_pruned FROM pghistory.maintain()")
    assert maintained in ([("orders_event", 1)], [])
    assert reset == ([("orders_event",)] if maintained else [])
    assert value(w.su, "SELECT count(*) FROM orders_event") == (0 if maintained else 1)
    return "yes" if maintained else "none touched"


CHECKS = dict(zip(MATRIX, [check_track, check_untrack, check_distribute, check_write, check_write_unrecorded,
                           check_read_event_table, check_read_events, check_read_aggregate, check_create_context, check_change_context, check_change_history,
                           check_change_registry, check_alter, check_give_away, check_retention, check_redact, check_maintain]))


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("action", list(MATRIX))
def test_cell(world, action, role):
    assert CHECKS[action](world, world.as_(role)) == MATRIX[action][ROLES.index(role)]
