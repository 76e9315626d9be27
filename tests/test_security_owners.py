"""Generated trigger functions and event tables belong to the tracked table's owner, whoever
(re)generates them: what they run runs with that owner's rights and never more (issue 11, item 1)."""

from __future__ import annotations

import psycopg
import pytest

from sqlhelpers import events, rows, value


@pytest.fixture
def alice(conn: psycopg.Connection, make_role) -> str:
    """A role that may create tables and track them, and nothing more."""
    role = make_role("pgh_alice")
    conn.execute(f"GRANT CREATE ON SCHEMA public, pghistory TO {role}")
    return role


def owners(conn: psycopg.Connection, table: str) -> list[tuple[str, str]]:
    """What the generated trigger functions and the event table of a table belong to."""
    return rows(conn, """
        SELECT p.oid::regprocedure::text, pg_get_userbyid(p.proowner)::text
          FROM pg_proc AS p JOIN pg_trigger AS g ON g.tgfoid = p.oid
         WHERE g.tgrelid = %s::regclass
        UNION ALL
        SELECT t.event_table::text, pg_get_userbyid(c.relowner)::text
          FROM pghistory.tracked AS t JOIN pg_class AS c ON c.oid = t.event_table
         WHERE t.tracked_table = %s::regclass
         ORDER BY 1""", table, table)


def test_a_superuser_regenerating_the_functions_lends_them_no_rights(conn, connect, alice):
    """The reproduction of the issue: alice's condition runs as alice, also after a superuser's
    ALTER TABLE regenerated the trigger function (before, it ran as the superuser from then on)."""
    as_alice = connect(user=alice)
    as_alice.execute("""
        CREATE TABLE seen (who text);
        CREATE FUNCTION public.whoami_log() RETURNS boolean LANGUAGE sql
            AS $$ INSERT INTO public.seen VALUES (current_user) RETURNING true $$;
        CREATE TABLE t (id int PRIMARY KEY, v text);
        SELECT pghistory.track('t', trackers => ARRAY[pghistory.insert_event(condition => 'public.whoami_log()')]);
        INSERT INTO t VALUES (1, 'a');
    """)
    conn.execute("ALTER TABLE t ADD COLUMN w int")
    as_alice.execute("INSERT INTO t VALUES (2, 'b', 2)")
    assert rows(as_alice, "SELECT who FROM seen") == [(alice,), (alice,)]
    assert events(as_alice, "t_event", "pgh_label, id, w") == [("insert", 1, None), ("insert", 2, 2)]
    assert owners(conn, "t") == [('pghistory."public.t/insert"()', alice), ("t_event", alice)]


@pytest.mark.parametrize("level", ["statement", "row"])
def test_a_superuser_tracking_a_table_gives_its_history_to_the_table_owner(conn, connect, alice, level):
    as_alice = connect(user=alice)
    as_alice.execute("CREATE TABLE t (id int PRIMARY KEY, v text)")
    conn.execute("SELECT pghistory.track('t', level => %s)", (level,))
    assert owners(conn, "t") == sorted(
        [(f'pghistory."public.t/{label}"()', alice) for label in ("delete", "insert", "truncate", "update")]
        + [("t_event", alice)])
    with as_alice.transaction():
        as_alice.execute("""SELECT pghistory.set_context('{"by": "alice"}')""")
        as_alice.execute("INSERT INTO t VALUES (1, 'a')")
        as_alice.execute("UPDATE t SET v = 'b'")
    # the owner's own history: readable, and still append-only
    assert events(as_alice, "t_event", "pgh_label, v") == [("insert", "a"), ("update", "b")]
    assert rows(conn, "SELECT metadata, created_by::text FROM pghistory.context") == [({"by": "alice"}, alice)]
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only history"):
        as_alice.execute("DELETE FROM t_event")


def test_an_event_table_of_another_owner_is_refused(conn, connect, alice, make_role):
    bob = make_role("pgh_bob")
    conn.execute(f"GRANT CREATE ON SCHEMA public TO {bob}")
    as_alice = connect(user=alice)
    as_alice.execute("CREATE TABLE t (id int PRIMARY KEY, v text)")
    connect(user=bob).execute("""CREATE TABLE bobs (pgh_id bigint, pgh_created_at timestamptz,
                                                    pgh_label text, pgh_obj_id int)""")
    with pytest.raises(psycopg.errors.InsufficientPrivilege) as info:
        conn.execute("SELECT pghistory.track('t', event_table => 'bobs')")
    assert info.value.diag.message_primary == (
        f"pghistory: public.bobs belongs to {bob}, and the event table of public.t must belong to its owner {alice}")
    assert info.value.diag.message_hint == f"ALTER TABLE public.bobs OWNER TO {alice}, or choose another event_table."
    assert value(conn, "SELECT count(*) FROM pghistory.tracked") == 0


def test_a_superuser_tracks_for_an_owner_that_may_not_create_in_schema_pghistory(conn, connect, make_role):
    """A superuser may give the functions to any owner; a member of the owner tracking in its
    stead needs the owner to have CREATE on schema pghistory, and is told so."""
    owner = make_role("pgh_owner")
    member = make_role("pgh_member", attributes=f"IN ROLE {owner}")
    conn.execute(f"GRANT CREATE ON SCHEMA public TO {owner}")
    conn.execute(f"GRANT CREATE ON SCHEMA pghistory TO {member}")
    connect(user=owner).execute("CREATE TABLE t (id int PRIMARY KEY)")
    with pytest.raises(psycopg.errors.InsufficientPrivilege) as info:
        connect(user=member).execute("SELECT pghistory.track('t')")
    assert info.value.diag.message_primary == f"pghistory: {owner} may not create trigger functions in schema pghistory"
    conn.execute("SELECT pghistory.track('t')")
    connect(user=owner).execute("INSERT INTO t VALUES (1)")
    assert events(conn, "t_event") == [("insert", 1)]


def test_giving_a_table_away_gives_its_history_and_trigger_functions_along(conn, connect, alice, make_role):
    """ALTER TABLE ... OWNER TO is followed: the functions run with the new owner's rights, not
    the old owner's, and the history, partitions included, belongs to the new owner."""
    bob = make_role("pgh_bob")
    conn.execute(f"GRANT CREATE ON SCHEMA public, pghistory TO {bob}")
    conn.execute(f"GRANT {bob} TO {alice}")  # PostgreSQL's rule: alice may give away to a role she is a member of
    as_alice = connect(user=alice)
    as_alice.execute("""
        CREATE TABLE seen (who text);
        GRANT INSERT ON seen TO PUBLIC;
        CREATE FUNCTION public.whoami_log() RETURNS boolean LANGUAGE sql
            AS $$ INSERT INTO public.seen VALUES (current_user) RETURNING true $$;
        GRANT EXECUTE ON FUNCTION public.whoami_log() TO PUBLIC;
        CREATE TABLE t (id int PRIMARY KEY, v text);
        SELECT pghistory.track('t', partition_by => interval '1 month', context => 'fk',
                               trackers => ARRAY[pghistory.insert_event(condition => 'public.whoami_log()')]);
        INSERT INTO t VALUES (1, 'a');
        ALTER TABLE t OWNER TO %s;
    """ % bob)
    assert owners(conn, "t") == [('pghistory."public.t/insert"()', bob), ("t_event", bob)]
    assert rows(conn, "SELECT DISTINCT pg_get_userbyid(c.relowner)::text FROM pg_partition_tree('t_event') AS p"
                      " JOIN pg_class AS c ON c.oid = p.relid") == [(bob,)]
    as_bob = connect(user=bob)
    with as_bob.transaction():  # bob is no superuser: his functions attach the context through _attach_context()
        as_bob.execute("""SELECT pghistory.set_context('{"by": "bob"}')""")
        as_bob.execute("INSERT INTO t VALUES (2, 'b')")
    assert rows(conn, "SELECT who FROM seen") == [(alice,), (bob,)]
    assert rows(conn, "SELECT pgh_label, pgh_obj_id, pgh_context ->> 'by' FROM pghistory.events('t')"
                      " ORDER BY pgh_id") == [("insert", "1", None), ("insert", "2", "bob")]
    assert rows(conn, "SELECT aspect FROM pghistory.status() WHERE NOT ok") == []


def test_a_table_is_not_given_to_an_owner_that_may_not_own_its_trigger_functions(conn, connect, alice, make_role):
    """Refused before anything changes, with the grant to make first; a superuser may give it anyway."""
    bob = make_role("pgh_bob")
    conn.execute(f"GRANT CREATE ON SCHEMA public TO {bob}")
    conn.execute(f"GRANT {bob} TO {alice}")
    as_alice = connect(user=alice)
    as_alice.execute("CREATE TABLE t (id int PRIMARY KEY); SELECT pghistory.track('t')")
    with pytest.raises(psycopg.errors.InsufficientPrivilege) as info:
        as_alice.execute(f"ALTER TABLE t OWNER TO {bob}")
    assert info.value.diag.message_primary == (
        f"pghistory: {bob} may not own the trigger functions of public.t, which live in schema pghistory")
    assert info.value.diag.message_hint == (
        f"A superuser or the extension's owner can GRANT CREATE ON SCHEMA pghistory TO {bob} first;"
        " or a superuser can give the table away.")
    assert value(conn, "SELECT pg_get_userbyid(relowner)::text FROM pg_class WHERE oid = 't'::regclass") == alice
    conn.execute(f"ALTER TABLE t OWNER TO {bob}")
    assert owners(conn, "t") == sorted(
        [(f'pghistory."public.t/{label}"()', bob) for label in ("delete", "insert", "truncate", "update")]
        + [("t_event", bob)])
