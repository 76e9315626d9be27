"""Tracking tables that Citus distributes, on a real cluster: a coordinator and two
workers on localhost (harness.CitusCluster), Citus built from ../shared/vendor for
PostgreSQL 16-18; skipped with the reason elsewhere.

Each test makes its own tables, so the cluster is started once per module.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg import sql

import harness
from sqlhelpers import rows, value

SHARDS = "SELECT * FROM run_command_on_shards(%s, $$SELECT coalesce(string_agg(tgname, ',' ORDER BY tgname), '') FROM pg_trigger WHERE tgrelid = '%%s'::regclass AND NOT tgisinternal$$)"


@pytest.fixture(scope="module")
def cluster(pg: harness.Server) -> Iterator[harness.CitusCluster]:
    try:
        build = harness.citus_build(pg.major)
    except harness.Unavailable as exc:
        pytest.skip(str(exc))
    harness.install_extension(build)
    with harness.CitusCluster(build) as cluster:
        with cluster.coordinator.connect() as conn:
            conn.execute("CREATE EXTENSION pghistory")  # Citus creates it on the workers too
        yield cluster


@pytest.fixture
def coord(cluster: harness.CitusCluster) -> Iterator[psycopg.Connection[Any]]:
    with cluster.coordinator.connect() as conn:
        yield conn


def distributed(conn: psycopg.Connection[Any], name: str, columns: str = "id int PRIMARY KEY, status text, amount int",
                by: str = "id") -> None:
    conn.execute(f"CREATE TABLE {name} ({columns})")
    conn.execute("SELECT create_distributed_table(%s, %s, shard_count => 4)", (name, by))


def shard_triggers(conn: psycopg.Connection[Any], table: str) -> set[str]:
    """The triggers on the shards of a table, with the shard ids taken out of their names."""
    return {",".join(sorted(t.rsplit("_", 1)[0] for t in r[2].split(",") if t))
            for r in rows(conn, SHARDS, table)}


@pytest.mark.parametrize("level", ["statement", "row"])
def test_track_distributed_table(coord: psycopg.Connection[Any], level: str) -> None:
    table = f"orders_{level}"
    distributed(coord, table)
    assert value(coord, "SELECT pghistory.track(%s, context => 'json', level => %s)::text", table, level) == \
        f"{table}_event"
    # the event table is distributed on the same column, beside the table
    assert rows(coord, "SELECT citus_table_type, distribution_column, colocation_id = (SELECT colocation_id"
                       " FROM citus_tables WHERE table_name = %s::regclass) FROM citus_tables"
                       " WHERE table_name = %s::regclass", table, f"{table}_event") == [("distributed", "id", True)]
    assert value(coord, "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = %s::regclass"
                        " AND contype = 'p'", f"{table}_event") == "PRIMARY KEY (pgh_id, id)"
    # bulk and single-row writes, with the context set by set_context() in the transaction
    with coord.transaction():
        context_id = value(coord, """SELECT pghistory.set_context('{"user": "alice"}')""")
        coord.execute(f"INSERT INTO {table} SELECT g, 'new', g * 10 FROM generate_series(1, 6) AS g")
        coord.execute(f"UPDATE {table} SET status = 'paid' WHERE id <= 3")
    coord.execute(f"UPDATE {table} SET amount = 99 WHERE id = 2")
    coord.execute(f"DELETE FROM {table} WHERE id = 6")
    assert rows(coord, f"SELECT pgh_label, pgh_obj_id, status, amount, pgh_context_id = %s, pgh_context"
                       f" FROM {table}_event ORDER BY id, pgh_created_at, pgh_label <> 'insert'", context_id) == [
        ("insert", 1, "new", 10, True, {"user": "alice"}), ("update", 1, "paid", 10, True, {"user": "alice"}),
        ("insert", 2, "new", 20, True, {"user": "alice"}), ("update", 2, "paid", 20, True, {"user": "alice"}),
        ("update", 2, "paid", 99, None, None),
        ("insert", 3, "new", 30, True, {"user": "alice"}), ("update", 3, "paid", 30, True, {"user": "alice"}),
        ("insert", 4, "new", 40, True, {"user": "alice"}), ("insert", 5, "new", 50, True, {"user": "alice"}),
        ("insert", 6, "new", 60, True, {"user": "alice"}), ("delete", 6, "new", 60, None, None)]
    # pgh_id is unique in the cluster: each node numbers in blocks of its own, of 2^44 numbers from
    # 2^52, the blocks b = group (mod 256) (README)
    assert rows(coord, f"SELECT count(*) = count(DISTINCT pgh_id), bool_and(pgh_id >> 44 >= 256),"
                       f" array_agg(DISTINCT (pgh_id >> 44) % 256 ORDER BY (pgh_id >> 44) % 256)"
                       f" FROM {table}_event") == [(True, True, [1, 2])]
    # the triggers are on every shard (TRUNCATE's is the coordinator's: see test_truncate)
    assert shard_triggers(coord, table) == {"pgh_delete,pgh_insert,pgh_update"}
    # every event has its transaction: the one of the node that wrote it (README, "Order across
    # tables")
    assert value(coord, f"SELECT count(*) FILTER (WHERE pgh_xact IS NULL) FROM {table}_event") == 0
    # reading, with diffs
    assert rows(coord, "SELECT pgh_label, pgh_diff, pgh_context FROM pghistory.events(%s::regclass, obj_id => '2')"
                       " ORDER BY pgh_created_at, pgh_label <> 'insert'", table) == [
        ("insert", None, {"user": "alice"}), ("update", {"status": ["new", "paid"]}, {"user": "alice"}),
        ("update", {"amount": [20, 99]}, None)]


def test_refusals(coord: psycopg.Connection[Any]) -> None:
    distributed(coord, "refused")
    with pytest.raises(psycopg.errors.FeatureNotSupported,
                       match=r"^pghistory: public\.refused is distributed by Citus, and context => 'fk' cannot work there\n") as exc:
        coord.execute("SELECT pghistory.track('refused')")
    assert exc.value.diag.message_hint == "Use context => 'json' (events carry the metadata) or 'none'."
    with pytest.raises(psycopg.errors.InvalidParameterValue,
                       match=r"^pghistory: the events of public\.refused must record its distribution column id\n"):
        coord.execute("SELECT pghistory.track('refused', context => 'json', fields => '{status}')")
    with pytest.raises(psycopg.errors.InvalidParameterValue,
                       match=r"^pghistory: the events of public\.refused must record its distribution column id\n"):
        coord.execute("SELECT pghistory.track('refused', context => 'json', exclude => '{id}')")
    coord.execute("CREATE TABLE ref (id int PRIMARY KEY)")
    coord.execute("SELECT create_reference_table('ref')")
    with pytest.raises(psycopg.errors.FeatureNotSupported,
                       match=r"^pghistory: public\.ref is a Citus reference table, which pghistory does not track\n"):
        coord.execute("SELECT pghistory.track('ref', context => 'json')")
    # nothing was written
    assert value(coord, "SELECT count(*) FROM pghistory.tracked WHERE tracked_table::text IN ('refused', 'ref')") == 0
    assert value(coord, "SELECT to_regclass('refused_event')") is None


def test_append_only_on_shards(coord: psycopg.Connection[Any]) -> None:
    distributed(coord, "guarded")
    coord.execute("SELECT pghistory.track('guarded', context => 'json')")
    coord.execute("INSERT INTO guarded SELECT g FROM generate_series(1, 8) AS g")
    assert shard_triggers(coord, "guarded_event") == {"pgh_append_only"}
    for statement, op in [("DELETE FROM guarded_event", "DELETE"), ("UPDATE guarded_event SET status = 'x'", "UPDATE")]:
        with pytest.raises(psycopg.errors.InsufficientPrivilege,
                           match=rf"^pghistory: public\.guarded_event_[0-9]+ is append-only history; {op} is refused"):
            coord.execute(statement)
    with pytest.raises(psycopg.errors.InsufficientPrivilege,
                       match=r"^pghistory: public\.guarded_event is append-only history; TRUNCATE is refused\n"):
        coord.execute("TRUNCATE guarded_event")
    assert value(coord, "SELECT count(*) FROM guarded_event") == 8
    with coord.transaction():
        coord.execute("SET LOCAL citus.propagate_set_commands = 'local'")
        coord.execute("SET LOCAL pghistory.allow_history_changes = on")
        coord.execute("DELETE FROM guarded_event WHERE id <= 2")
    assert value(coord, "SELECT count(*) FROM guarded_event") == 6


@pytest.mark.parametrize("level", ["statement", "row"])
def test_truncate(coord: psycopg.Connection[Any], level: str) -> None:
    table = f"emptied_{level}"
    distributed(coord, table)
    coord.execute(f"SELECT pghistory.track('{table}', context => 'json', level => '{level}')")
    coord.execute(f"INSERT INTO {table} SELECT g, 's' || g FROM generate_series(1, 5) AS g")
    coord.execute(f"TRUNCATE {table}")
    assert rows(coord, f"SELECT pgh_label, count(*), sum(id) FROM {table}_event GROUP BY 1 ORDER BY 1") == [
        ("insert", 5, 5 * 6 // 2), ("truncate", 5, 5 * 6 // 2)]


def test_events_the_coordinator_writes_sort_after_earlier_ones(coord: psycopg.Connection[Any]) -> None:
    """A TRUNCATE's, create_event()'s and backfill()'s events are written through the coordinator,
    whose own pgh_id range is below the workers': they take theirs on the node of the row, so each
    object's events stay in the order they were written."""
    distributed(coord, "ordered")
    coord.execute("""SELECT pghistory.track('ordered', context => 'json', trackers => ARRAY[
        pghistory.insert_event(), pghistory.update_event(), pghistory.delete_event(),
        pghistory.truncate_event(), pghistory.manual_event('audited')])""")
    coord.execute("INSERT INTO ordered SELECT g, 'new' FROM generate_series(1, 4) AS g")
    coord.execute("UPDATE ordered SET status = 'paid' WHERE id <= 2")
    audited = value(coord, "SELECT pghistory.create_event('ordered', 1, 'audited')")
    assert value(coord, "SELECT pgh_label FROM ordered_event WHERE pgh_id = %s", audited) == "audited"
    with coord.transaction():
        coord.execute("SET LOCAL citus.propagate_set_commands = 'local'")  # to reach the worker
        coord.execute("SET LOCAL pghistory.enabled = off")
        coord.execute("INSERT INTO ordered VALUES (5, 'quiet')")
    assert value(coord, "SELECT pghistory.backfill('ordered')") == 1
    coord.execute("TRUNCATE ordered")
    # every event on the node that holds its row, numbered after the earlier ones
    assert value(coord, "SELECT count(*) FROM ordered_event WHERE pgh_id >> 48 = 0") == 0
    assert rows(coord, "SELECT id, array_agg(pgh_label ORDER BY pgh_id) FROM ordered_event GROUP BY id ORDER BY id") == [
        (1, ["insert", "update", "audited", "truncate"]), (2, ["insert", "update", "truncate"]),
        (3, ["insert", "truncate"]), (4, ["insert", "truncate"]), (5, ["backfill", "truncate"])]
    # so the table as of now is empty, and its diffs pair the right neighbours
    assert value(coord, "SELECT count(*) FROM pghistory.as_of(NULL::ordered, now())") == 0
    assert rows(coord, "SELECT pgh_label, pgh_diff FROM pghistory.events('ordered', 1) ORDER BY pgh_id") == [
        ("insert", None), ("update", {"status": ["new", "paid"]}), ("audited", {}), ("truncate", {})]


def test_alter_table_add_column(coord: psycopg.Connection[Any]) -> None:
    distributed(coord, "grown")
    coord.execute("SELECT pghistory.track('grown', context => 'json')")
    coord.execute("INSERT INTO grown VALUES (1, 'a', 1)")
    # Citus runs the ALTER TABLE over parallel connections, after which the trigger
    # functions it propagates cannot be changed in the same transaction: refused, undone
    with pytest.raises(psycopg.errors.InternalError_, match="^cannot run function command because there was a"
                                                             " parallel operation on a distributed table"):
        coord.execute("ALTER TABLE grown ADD COLUMN note text")
    assert value(coord, "SELECT count(*) FROM pg_attribute WHERE attrelid = 'grown'::regclass AND attname = 'note'") == 0
    with coord.transaction():
        coord.execute("SET LOCAL citus.multi_shard_modify_mode = 'sequential'")
        coord.execute("ALTER TABLE grown ADD COLUMN note text")
    coord.execute("INSERT INTO grown VALUES (2, 'b', 2, 'noted')")
    coord.execute("UPDATE grown SET note = 'later' WHERE id = 1")
    assert rows(coord, "SELECT pgh_label, id, note FROM grown_event ORDER BY id, pgh_created_at") == [
        ("insert", 1, None), ("update", 1, "later"), ("insert", 2, "noted")]


def test_owner_to(coord: psycopg.Connection[Any]) -> None:
    """ALTER TABLE ... OWNER TO of a distributed table is followed like the other ALTER TABLEs:
    in a sequential transaction (Citus creates the role on the workers too)."""
    distributed(coord, "given")
    coord.execute("SELECT pghistory.track('given', context => 'json')")
    coord.execute("CREATE ROLE pgh_heir")
    coord.execute("GRANT CREATE ON SCHEMA public, pghistory TO pgh_heir")
    try:
        give_away(coord)
    finally:  # the tests after this one move shards and dump the cluster, as roles that may log in
        coord.rollback()
        coord.execute("SELECT pghistory.untrack('given', drop_events => true)")
        coord.execute("DROP TABLE given")
        coord.execute("REVOKE ALL ON SCHEMA public, pghistory FROM pgh_heir")
        coord.execute("DROP ROLE pgh_heir")


def give_away(coord: psycopg.Connection[Any]) -> None:
    with coord.transaction():
        coord.execute("SET LOCAL citus.multi_shard_modify_mode = 'sequential'")
        coord.execute("ALTER TABLE given OWNER TO pgh_heir")
    assert rows(coord, "SELECT ok, detail FROM pghistory.status() WHERE object = 'public.given' AND aspect = 'owners'"
                ) == [(True, "event table and trigger functions owned by pgh_heir, as the table")]
    coord.execute("INSERT INTO given VALUES (1, 'a')")
    assert rows(coord, "SELECT pgh_label, id FROM given_event") == [("insert", 1)]
    # on the workers too: the functions the shards' triggers call belong to the new owner
    assert {r[3] for r in rows(coord, "SELECT * FROM run_command_on_workers($$SELECT string_agg(DISTINCT"
                                      " pg_get_userbyid(p.proowner), ',') FROM pg_trigger AS g JOIN pg_proc AS p"
                                      " ON p.oid = g.tgfoid WHERE g.tgname LIKE 'pgh%%'"
                                      " AND g.tgrelid::regclass::text ~ '^given_[0-9]+$'$$)")} == {"pgh_heir"}


def test_distribute_after_tracking(coord: psycopg.Connection[Any]) -> None:
    """untrack, distribute, track: the history so far is distributed with the table's."""
    coord.execute("CREATE TABLE moved (id int PRIMARY KEY, name text)")
    coord.execute("SELECT pghistory.track('moved', context => 'json')")
    coord.execute("INSERT INTO moved VALUES (1, 'a'), (2, 'b')")
    coord.execute("SELECT pghistory.untrack('moved')")
    coord.execute("SELECT create_distributed_table('moved', 'id', shard_count => 4)")
    coord.execute("SELECT pghistory.track('moved', context => 'json')")
    assert value(coord, "SELECT citus_table_type FROM citus_tables WHERE table_name = 'moved_event'::regclass") == \
        "distributed"
    coord.execute("UPDATE moved SET name = 'c'")
    assert rows(coord, "SELECT pgh_label, pgh_diff FROM pghistory.events('moved'::regclass, obj_id => '1')"
                       " ORDER BY pgh_created_at") == [("insert", None), ("update", {"name": ["a", "c"]})]
    assert shard_triggers(coord, "moved") == {"pgh_delete,pgh_insert,pgh_update"}
    assert shard_triggers(coord, "moved_event") == {"pgh_append_only"}


def test_distribute_tracked_table(coord: psycopg.Connection[Any]) -> None:
    """distribute(): a tracked table distributed in one call, its history with it, still tracked
    since it first was (as_of of a row that has no event); Citus's own refusal, and distribute()'s."""
    import time

    coord.execute("CREATE TABLE later (id int PRIMARY KEY, name text)")
    coord.execute("INSERT INTO later VALUES (1, 'a')")  # before tracking: no event
    coord.execute("SELECT pghistory.track('later', context => 'json')")
    coord.execute("INSERT INTO later VALUES (2, 'b')")
    tracked_at = value(coord, "SELECT tracked_at FROM pghistory.tracked WHERE tracked_table = 'later'::regclass")
    time.sleep(0.02)
    moment = value(coord, "SELECT clock_timestamp()")
    with pytest.raises(psycopg.errors.InternalError_, match="because it has triggers"):
        coord.execute("SELECT create_distributed_table('later', 'id')")  # Citus's refusal: why distribute() is there
    coord.execute("CREATE TABLE later_fk (id int PRIMARY KEY)")
    coord.execute("SELECT pghistory.track('later_fk')")
    with pytest.raises(psycopg.errors.FeatureNotSupported,
                       match=r"^pghistory: public\.later_fk is tracked with context => 'fk', which cannot work") as exc:
        coord.execute("SELECT pghistory.distribute('later_fk', 'id')")
    assert exc.value.diag.message_hint == \
        "SELECT pghistory.track('public.later_fk', context => 'json') first (with its other settings), then distribute() it."
    with pytest.raises(psycopg.errors.UndefinedColumn, match=r"^pghistory: public\.later has no column nope\n"):
        coord.execute("SELECT pghistory.distribute('later', 'nope')")
    assert value(coord, "SELECT count(*) FROM citus_tables WHERE table_name::text LIKE 'later%%'") == 0

    assert value(coord, "SELECT pghistory.distribute('later', 'id', shard_count => 4)::text") == "later_event"
    assert rows(coord, "SELECT table_name::text, citus_table_type, distribution_column FROM citus_tables"
                       " WHERE table_name::text LIKE 'later%%' ORDER BY 1") == [
        ("later", "distributed", "id"), ("later_event", "distributed", "id")]
    assert value(coord, "SELECT tracked_at FROM pghistory.tracked WHERE tracked_table = 'later'::regclass") == tracked_at
    assert shard_triggers(coord, "later") == {"pgh_delete,pgh_insert,pgh_update"}
    assert shard_triggers(coord, "later_event") == {"pgh_append_only"}
    with coord.transaction():
        coord.execute("""SELECT pghistory.set_context('{"by": "alice"}')""")
        coord.execute("UPDATE later SET name = 'c' WHERE id = 2")
    assert rows(coord, "SELECT pgh_label, pgh_diff, pgh_context->>'by' FROM pghistory.events('later'::regclass,"
                       " obj_id => '2') ORDER BY pgh_created_at") == [
        ("insert", None, None), ("update", {"name": ["b", "c"]}, "alice")]
    assert rows(coord, "SELECT id, name FROM pghistory.as_of(NULL::later, %s) ORDER BY id", moment) == [
        (1, "a"), (2, "b")]
    with pytest.raises(psycopg.errors.ObjectInUse, match=r"^pghistory: public\.later is a Citus distributed table already\n"):
        coord.execute("SELECT pghistory.distribute('later', 'id')")


def test_undistributed_table(coord: psycopg.Connection[Any]) -> None:
    """After untrack and undistribute_table(), the event table stays distributed (undistribute_table()
    leaves the tables co-located with it): track() refuses it, before writing, since no write of
    the plain table could be recorded there; a new event table works."""
    distributed(coord, "undone")
    coord.execute("SELECT pghistory.track('undone', context => 'json')")
    coord.execute("INSERT INTO undone VALUES (1, 'a')")
    coord.execute("SELECT pghistory.untrack('undone')")
    coord.execute("SELECT undistribute_table('undone')")
    with pytest.raises(psycopg.errors.ObjectInUse,
                       match=r"^pghistory: public\.undone_event is a Citus distributed table and public\.undone is not,"
                             r" so its writes could not be recorded there\n"):
        coord.execute("SELECT pghistory.track('undone', context => 'json')")
    assert value(coord, "SELECT count(*) FROM pghistory.tracked WHERE tracked_table = 'undone'::regclass") == 0
    coord.execute("INSERT INTO undone VALUES (2, 'b')")  # untracked, and writable
    coord.execute("SELECT pghistory.track('undone', event_table => 'undone_history')")
    coord.execute("UPDATE undone SET status = 'c'")
    assert rows(coord, "SELECT pgh_obj_id, pgh_label FROM pghistory.events('undone'::regclass) ORDER BY pgh_id") == [
        ("1", "update"), ("2", "update")]
    assert value(coord, "SELECT count(*) FROM undone_event") == 1  # the history before stays readable


def test_untrack_leaves_no_trigger(coord: psycopg.Connection[Any]) -> None:
    distributed(coord, "dropped")
    coord.execute("SELECT pghistory.track('dropped', context => 'json')")
    coord.execute("SELECT pghistory.untrack('dropped')")
    assert shard_triggers(coord, "dropped") == {""}
    assert value(coord, "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'dropped'::regclass AND tgname LIKE 'pgh%%'") == 0
    # and it can be tracked again
    coord.execute("SELECT pghistory.track('dropped', context => 'json')")
    coord.execute("INSERT INTO dropped VALUES (1)")
    assert rows(coord, "SELECT pgh_label, id FROM dropped_event") == [("insert", 1)]


def cleanup_after_moves(cluster: harness.CitusCluster) -> None:
    with cluster.coordinator.connect(autocommit=True) as conn:
        conn.execute("ALTER SYSTEM RESET citus.defer_shard_delete_interval")
        conn.execute("SELECT pg_reload_conf()")
        conn.execute("CALL citus_cleanup_orphaned_resources()")


def test_shard_move(coord: psycopg.Connection[Any], cluster: harness.CitusCluster,
                    request: pytest.FixtureRequest) -> None:
    """A shard moved to the other worker takes its event shard along, triggers and guard included."""
    distributed(coord, "travelling")
    coord.execute("SELECT pghistory.track('travelling', context => 'json')")
    coord.execute("INSERT INTO travelling VALUES (1, 'a')")
    shard, port = rows(coord, "SELECT s.shardid, p.nodeport FROM pg_dist_shard AS s JOIN pg_dist_placement AS pl"
                              " USING (shardid) JOIN pg_dist_node AS p USING (groupid)"
                              " WHERE s.logicalrelid = 'travelling'::regclass"
                              " AND get_shard_id_for_distribution_column('travelling', 1) = s.shardid")[0]
    target = next(w.port for w in cluster.workers if w.port != port)
    # the placement a move leaves behind stays until the test is over (no background cleanup)
    coord.execute("ALTER SYSTEM SET citus.defer_shard_delete_interval = -1")
    coord.execute("SELECT pg_reload_conf()")
    request.addfinalizer(lambda: cleanup_after_moves(cluster))
    coord.execute("SELECT citus_move_shard_placement(%s, '127.0.0.1', %s, '127.0.0.1', %s,"
                  " shard_transfer_mode => 'block_writes')", (shard, port, target))
    assert value(coord, "SELECT p.nodeport FROM pg_dist_placement JOIN pg_dist_node AS p USING (groupid)"
                        " WHERE shardid = %s", shard) == target
    coord.execute("UPDATE travelling SET status = 'b' WHERE id = 1")
    # recorded on the new node, numbered above the event recorded on the old one
    assert rows(coord, "SELECT pgh_label, status FROM travelling_event ORDER BY pgh_id") == [
        ("insert", "a"), ("update", "b")]
    # the moved shard got a copy of the TRUNCATE trigger too: it records nothing
    assert shard_triggers(coord, "travelling") == {"pgh_delete,pgh_insert,pgh_update",
                                                   "pgh_delete,pgh_insert,pgh_truncate,pgh_update"}
    coord.execute("TRUNCATE travelling")
    assert rows(coord, "SELECT pgh_label, id FROM travelling_event WHERE pgh_label = 'truncate'") == [("truncate", 1)]
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="is append-only history; DELETE is refused"):
        coord.execute("DELETE FROM travelling_event WHERE id = 1")
    # untrack leaves no trigger on any shard: neither the TRUNCATE trigger copied onto the
    # moved shard nor those of the placement the move left behind for deferred cleanup
    assert value(coord, "SELECT count(*) FROM pg_dist_cleanup WHERE object_name = %s",
                 f"public.travelling_{shard}") == 1
    coord.execute("SELECT pghistory.untrack('travelling')")
    assert shard_triggers(coord, "travelling") == {""}
    for node in cluster.nodes:
        with node.connect() as conn:
            conn.execute("SET citus.override_table_visibility = off")  # show the shards in pg_class
            assert rows(conn, "SELECT tgrelid::regclass::text, tgname FROM pg_trigger WHERE tgname LIKE 'pgh%%'"
                              " AND tgrelid::regclass::text ~ '^travelling(_[0-9]+)?$'") == []
            if node.port == port:  # the placement left behind is still there, without triggers
                assert value(conn, "SELECT count(*) FROM pg_class WHERE relname = %s", f"travelling_{shard}") == 1
    # and it can be tracked again
    coord.execute("SELECT pghistory.track('travelling', context => 'json')")
    coord.execute("UPDATE travelling SET status = 'c'")
    assert value(coord, "SELECT count(*) FROM travelling_event WHERE status = 'c'") == 0  # it was truncated
    coord.execute("INSERT INTO travelling VALUES (1, 'd')")
    assert value(coord, "SELECT count(*) FROM travelling_event WHERE status = 'd'") == 1


def test_order_across_a_shard_move(coord: psycopg.Connection[Any], cluster: harness.CitusCluster,
                                   request: pytest.FixtureRequest) -> None:
    """An object's events stay in write order across a move to a node of a later group (a node
    added later: scaling out) and to one of an earlier group, whose numbering moves up to a block
    above the shard's events when the shard arrives (README, "Order on a cluster"): with writes
    blocked during the move, and by logical replication. The table belongs to a role that is no
    superuser, as whom Citus makes the shard on the node it moves to."""
    distributed(coord, "moving", "id int PRIMARY KEY, status text", by="id")
    coord.execute("CREATE ROLE pgh_mover LOGIN")
    coord.execute("GRANT CREATE ON SCHEMA public, pghistory TO pgh_mover")

    def drop_mover() -> None:
        with cluster.coordinator.connect(autocommit=True) as conn:
            conn.execute("SELECT pghistory.untrack('moving', drop_events => true)")
            conn.execute("DROP TABLE moving")
            conn.execute("REVOKE ALL ON SCHEMA public, pghistory FROM pgh_mover")
            conn.execute("DROP ROLE pgh_mover")
    request.addfinalizer(drop_mover)
    with coord.transaction():
        coord.execute("SET LOCAL citus.multi_shard_modify_mode = 'sequential'")
        coord.execute("ALTER TABLE moving OWNER TO pgh_mover")
    coord.execute("SELECT pghistory.track('moving', context => 'json')")
    coord.execute("INSERT INTO moving SELECT g, 'a' FROM generate_series(1, 40) AS g")
    coord.execute("UPDATE moving SET status = 'b'")
    placement = ("SELECT s.shardid, n.groupid, n.nodeport FROM pg_dist_shard AS s"
                 " JOIN pg_dist_placement AS p USING (shardid) JOIN pg_dist_node AS n USING (groupid)"
                 " WHERE s.logicalrelid = 'moving'::regclass"
                 " AND s.shardid = get_shard_id_for_distribution_column('moving', %s)")
    # one object on each worker: the one on group 1 moves up to group 2, the other down
    up = next(i for i in range(1, 41) if rows(coord, placement, i)[0][1] == 1)
    down = next(i for i in range(1, 41) if rows(coord, placement, i)[0][1] == 2)
    ports = {w.port for w in cluster.workers}
    coord.execute("ALTER SYSTEM SET citus.defer_shard_delete_interval = -1")
    coord.execute("SELECT pg_reload_conf()")
    request.addfinalizer(lambda: cleanup_after_moves(cluster))
    for obj, mode in ((up, "block_writes"), (down, "force_logical")):
        # (Citus moves the co-located shards of the other tables along)
        shard, _, port = rows(coord, placement, obj)[0]
        (target,) = ports - {port}
        coord.execute("SELECT citus_move_shard_placement(%s, '127.0.0.1', %s, '127.0.0.1', %s,"
                      " shard_transfer_mode => %s)", (shard, port, target, mode))
    coord.execute("UPDATE moving SET status = 'c' WHERE id IN (%s, %s)", (up, down))

    def timeline(obj: int) -> list[tuple[str, dict[str, Any] | None]]:
        return rows(coord, "SELECT pgh_data ->> 'status', pgh_diff FROM pghistory.events('moving', %s)"
                           " ORDER BY pgh_id", obj)

    for obj in (up, down):
        assert timeline(obj) == [("a", None), ("b", {"status": ["a", "b"]}), ("c", {"status": ["b", "c"]})]
    assert value(coord, "SELECT count(*) = count(DISTINCT pgh_id) FROM moving_event")


def test_order_across_a_shard_split(coord: psycopg.Connection[Any]) -> None:
    """A shard split onto a node of an earlier group: each object's new events still come after its
    old ones (the node numbers above the new shards' events when Citus gives them their keys)."""
    distributed(coord, "splitting", "id int PRIMARY KEY, status text", by="id")
    coord.execute("SELECT pghistory.track('splitting', context => 'json')")
    coord.execute("INSERT INTO splitting SELECT g, 'a' FROM generate_series(1, 40) AS g")
    coord.execute("UPDATE splitting SET status = 'b'")
    coord.execute("CREATE TABLE splitting_event_2024 (note text)")  # named like a shard, and none
    coord.execute("ALTER TABLE splitting_event_2024 ADD PRIMARY KEY (note)")
    coord.execute("DROP TABLE splitting_event_2024")
    shard, low, high = rows(coord, "SELECT s.shardid, s.shardminvalue::int, s.shardmaxvalue::int FROM pg_dist_shard AS s"
                                   " JOIN pg_dist_placement USING (shardid) JOIN pg_dist_node AS n USING (groupid)"
                                   " WHERE s.logicalrelid = 'splitting'::regclass AND n.groupid = 2"
                                   " ORDER BY s.shardid LIMIT 1")[0]
    earlier = value(coord, "SELECT nodeid FROM pg_dist_node WHERE groupid = 1")
    coord.execute("SELECT citus_split_shard_by_split_points(%s, ARRAY[%s], ARRAY[%s, %s],"
                  " shard_transfer_mode => 'block_writes')", (shard, str((low + high) // 2), earlier, earlier))
    coord.execute("UPDATE splitting SET status = 'c'")
    assert rows(coord, "SELECT DISTINCT array_agg(status ORDER BY pgh_id) FROM splitting_event GROUP BY id") == [
        (["a", "b", "c"],)]
    assert value(coord, "SELECT count(*) = count(DISTINCT pgh_id) FROM splitting_event")
    coord.execute("SELECT pghistory.untrack('splitting', drop_events => true)")
    coord.execute("DROP TABLE splitting")
    coord.execute("CALL citus_cleanup_orphaned_resources()")

def test_python_binding_context_reaches_the_shards(coord: psycopg.Connection[Any],
                                                   cluster: harness.CitusCluster) -> None:
    """pgh.context (local, and the call form in a transaction), the ambient context of
    HistoryConnection (sync and async) and pgh.ignore(local=True) set their values by SET LOCAL,
    which Citus passes on to the workers where the events are written."""
    import asyncio

    import pghistory as pgh

    distributed(coord, "bound")
    coord.execute("SELECT pghistory.track('bound', context => 'json')")
    dsn = cluster.coordinator.dsn()
    with psycopg.connect(dsn) as conn:
        with conn.transaction(), pgh.context(conn, local=True, user="alice") as block:
            conn.execute("INSERT INTO bound SELECT g FROM generate_series(1, 40) AS g")  # every shard
            pgh.context(conn, reason="refund")  # merged, at once
            conn.execute("UPDATE bound SET status = 'paid' WHERE id = 1")
        with conn.transaction(), pgh.ignore(conn, local=True):
            conn.execute("UPDATE bound SET status = 'ignored'")
    with pgh.context(user="bob") as ambient:
        with pgh.HistoryConnection.connect(dsn) as hconn:
            hconn.execute("UPDATE bound SET amount = 2 WHERE id = 2")
            hconn.commit()

        async def write() -> None:
            async with await pgh.AsyncHistoryConnection.connect(dsn) as aconn:
                await aconn.execute("UPDATE bound SET amount = 3 WHERE id = 3")
                await aconn.commit()

        asyncio.run(write())
    alice, bob = str(block.id), str(ambient.id)
    assert rows(coord, "SELECT pgh_label, pgh_context_id::text, pgh_context, count(*) FROM bound_event"
                       " WHERE pgh_label = 'insert' GROUP BY 1, 2, 3") == [("insert", alice, {"user": "alice"}, 40)]
    assert rows(coord, "SELECT pgh_label, id, pgh_context_id::text, pgh_context FROM bound_event"
                       " WHERE pgh_label <> 'insert' ORDER BY id") == [
        ("update", 1, alice, {"user": "alice", "reason": "refund"}),
        ("update", 2, bob, {"user": "bob"}), ("update", 3, bob, {"user": "bob"})]
    # the rows are on both workers (on every shard), so the context crossed to both
    assert value(coord, "SELECT count(DISTINCT nodeport) FROM citus_shards WHERE table_name = 'bound'::regclass") == 2


def test_session_context_does_not_reach_the_shards(coord: psycopg.Connection[Any]) -> None:
    """What Citus does not pass on (README): a context set for the session."""
    import pghistory as pgh

    distributed(coord, "sessioned")
    coord.execute("SELECT pghistory.track('sessioned', context => 'json')")
    with pgh.context(coord, user="alice"):
        coord.execute("INSERT INTO sessioned VALUES (1)")
    with pgh.ignore(coord):  # nor does pghistory.enabled = off for the session: still recorded
        coord.execute("INSERT INTO sessioned VALUES (2)")
    assert rows(coord, "SELECT id, pgh_context_id, pgh_context FROM sessioned_event ORDER BY id") == [
        (1, None, None), (2, None, None)]


def assert_read_on_one_shard(coord: psycopg.Connection[Any], table: str, obj_id: str) -> None:
    """events(table, obj_id => obj_id) is a router plan: Task Count 1, not one task per shard."""
    query = value(coord, "SELECT pghistory._events_query(t.event_table, %s, t.trackers, false, '{obj_id}')"
                         " FROM pghistory.tracked AS t WHERE t.tracked_table = %s::regclass",
                  f"public.{table}", table)
    coord.execute(f"PREPARE one_object(text) AS {query}")
    explain = sql.SQL("EXPLAIN (COSTS OFF) EXECUTE one_object({})").format(sql.Literal(obj_id)).as_string(coord)
    plan = "\n".join(r[0] for r in rows(coord, explain))
    coord.execute("DEALLOCATE one_object")
    assert "Task Count: 1\n" in plan, plan


def test_reading_distributed_history(coord: psycopg.Connection[Any]) -> None:
    """aggregate_events, events() (one object's on its shard), as_of, changes, blame and revert
    over a distributed event table; revert_context of a context some rows changed after."""
    import time

    def moment() -> Any:
        time.sleep(0.02)  # the workers stamp events with their own transactions' start
        at = value(coord, "SELECT clock_timestamp()")
        time.sleep(0.02)
        return at

    distributed(coord, "read")
    before_tracking = moment()
    coord.execute("SELECT pghistory.track('read', context => 'json')")
    with coord.transaction():
        coord.execute("""SELECT pghistory.set_context('{"user": "alice"}')""")
        coord.execute("INSERT INTO read SELECT g, 'new', g FROM generate_series(1, 6) AS g")
    created = moment()
    with coord.transaction():
        context_id = value(coord, """SELECT pghistory.set_context('{"user": "bob"}')""")
        coord.execute("UPDATE read SET status = 'paid' WHERE id <= 2")
        coord.execute("DELETE FROM read WHERE id = 6")
    assert rows(coord, "SELECT pgh_obj_id, pgh_label, pgh_diff, pgh_context->>'user' FROM pghistory.aggregate_events"
                       " WHERE pgh_obj_model = 'public.read' AND pgh_obj_id IN ('1', '6')"
                       " ORDER BY pgh_obj_id, pgh_label <> 'insert'") == [
        ("1", "insert", None, "alice"), ("1", "update", {"status": ["new", "paid"]}, "bob"),
        ("6", "insert", None, "alice"), ("6", "delete", {}, "bob")]
    assert rows(coord, "SELECT pgh_label, pgh_diff FROM pghistory.events('read'::regclass, obj_id => '2')"
                       " ORDER BY pgh_label <> 'insert'") == [("insert", None), ("update", {"status": ["new", "paid"]})]
    # one object's events are read on its one shard: a router plan (Task Count 1, not 4)
    assert_read_on_one_shard(coord, "read", "2")
    # time travel
    assert rows(coord, "SELECT id, status FROM pghistory.as_of(NULL::read, %s) ORDER BY id", created) == [
        (i, "new") for i in range(1, 7)]
    assert rows(coord, "SELECT id, status FROM pghistory.as_of(NULL::read, %s) ORDER BY id", before_tracking) == []
    assert rows(coord, "SELECT id, status FROM pghistory.as_of(NULL::read, %s, 6)", created) == [(6, "new")]
    assert rows(coord, "SELECT * FROM pghistory.changes('read', %s) ORDER BY 1", created) == [
        ("1", "updated", {"status": ["new", "paid"]}), ("2", "updated", {"status": ["new", "paid"]}),
        ("6", "deleted", {"id": [6, None], "amount": [6, None], "status": ["new", None]})]
    assert rows(coord, "SELECT \"column\", value, pgh_label FROM pghistory.blame('read', 2) ORDER BY 1") == [
        ("amount", 2, "insert"), ("id", 2, "insert"), ("status", "paid", "update")]
    # revert: an update back, a deleted row back
    for obj in (2, 6):
        insert_id = value(coord, "SELECT pgh_id FROM read_event WHERE id = %s AND pgh_label = 'insert'", obj)
        written = value(coord, "SELECT pghistory.revert('read_event', %s)", insert_id)
        assert value(coord, "SELECT pgh_label FROM read_event WHERE pgh_id = %s AND id = %s", written, obj) in (
            "update", "insert")
    assert rows(coord, "SELECT id, status FROM read WHERE id IN (2, 6) ORDER BY id") == [(2, "new"), (6, "new")]
    # bob's context: its rows 2 and 6 were changed since (by the reverts above, under no context)
    with pytest.raises(psycopg.errors.SerializationFailure,
                       match=r"^pghistory: cannot revert context .*: 2 rows were changed since by another context\n") as exc:
        coord.execute("SELECT * FROM pghistory.revert_context(%s)", (context_id,))
    assert exc.value.diag.message_detail.startswith("Changed since: public.read 2 (events ")


@pytest.mark.parametrize("key", ["id", "tenant"])
def test_revert_context(coord: psycopg.Connection[Any], key: str) -> None:
    """revert_context() over a distributed event table, one object at a time on its shard: a
    context's insert, update and delete taken back; a context whose row was changed since refused,
    naming it. Keyed by the distribution column, and by (tenant_id, id), distributed by tenant_id."""
    table = f"undo_{key}"
    if key == "id":
        distributed(coord, table)
        obj = str
    else:
        distributed(coord, table, "tenant_id int, id int, status text, amount int, PRIMARY KEY (tenant_id, id)",
                    by="tenant_id")
        obj = lambda i: f"[{i % 3}, {i}]"  # noqa: E731 (the object identity: the key as a JSON array)
    coord.execute(f"SELECT pghistory.track('{table}', context => 'json')")

    def write(user: str, *statements: str) -> Any:
        with coord.transaction():
            context_id = value(coord, "SELECT pghistory.set_context(jsonb_build_object('user', %s::text))", user)
            for statement in statements:
                coord.execute(statement.format(table=table))
        return context_id

    # rows (id, status, amount), with tenant_id = id % 3 in front for the composite key
    tenant = "" if key == "id" else "g % 3, "
    write("alice", f"INSERT INTO {{table}} SELECT {tenant}g, 'new', g FROM generate_series(1, 4) AS g")
    before = rows(coord, f"SELECT * FROM {table} ORDER BY id")
    bob = write("bob", "UPDATE {table} SET status = 'paid' WHERE id = 1", "DELETE FROM {table} WHERE id = 2",
                f"INSERT INTO {{table}} SELECT {tenant}g, 'new', g FROM generate_series(5, 5) AS g")
    carol = write("carol", "UPDATE {table} SET amount = 30 WHERE id = 3")
    write("dave", "UPDATE {table} SET amount = 31 WHERE id = 3")

    plan = [(f"{table}_event", obj(1), "update"), (f"{table}_event", obj(2), "insert"),
            (f"{table}_event", obj(5), "delete")]
    assert sorted(rows(coord, "SELECT event_table::text, obj_id, action FROM pghistory.revert_context(%s, dry_run => true)",
                       bob)) == plan
    assert value(coord, f"SELECT count(*) FROM {table}") == 4  # a dry run writes nothing
    assert sorted(rows(coord, "SELECT event_table::text, obj_id, action FROM pghistory.revert_context(%s)", bob)) == plan
    assert rows(coord, f"SELECT * FROM {table} WHERE id <> 3 ORDER BY id") == [r for r in before if r[-3] != 3]  # r[-3]: id
    # the revert is recorded as ordinary writes, on each object's shard
    assert rows(coord, f"SELECT pgh_label, pgh_diff FROM pghistory.events('{table}'::regclass, obj_id => %s)"
                       " ORDER BY pgh_id", obj(1)) == [
        ("insert", None), ("update", {"status": ["new", "paid"]}), ("update", {"status": ["paid", "new"]})]

    with pytest.raises(psycopg.errors.SerializationFailure,
                       match=r"^pghistory: cannot revert context .*: a row was changed since by another context\n") as exc:
        coord.execute("SELECT * FROM pghistory.revert_context(%s)", (carol,))
    assert exc.value.diag.message_detail.startswith(f"Changed since: public.{table} {obj(3)} (events ")
    assert value(coord, f"SELECT amount FROM {table} WHERE id = 3") == 31  # nothing written


def test_composite_key_reads_one_shard(coord: psycopg.Connection[Any]) -> None:
    """A table keyed by (tenant_id, id) and distributed by tenant_id: one object's history is
    read on its one shard, the distribution column taken from the key's JSON array."""
    distributed(coord, "tenants", "tenant_id int, id int, status text, PRIMARY KEY (tenant_id, id)", by="tenant_id")
    coord.execute("SELECT pghistory.track('tenants', context => 'json')")
    coord.execute("INSERT INTO tenants SELECT g % 3, g, 'new' FROM generate_series(1, 6) AS g")
    coord.execute("UPDATE tenants SET status = 'paid' WHERE tenant_id = 1 AND id = 4")
    assert rows(coord, "SELECT pgh_obj_id, pgh_label, pgh_diff FROM pghistory.events('tenants'::regclass,"
                       " obj_id => '[1, 4]') ORDER BY pgh_id") == [
        ("[1, 4]", "insert", None), ("[1, 4]", "update", {"status": ["new", "paid"]})]
    assert_read_on_one_shard(coord, "tenants", "[1, 4]")
    written = value(coord, "SELECT pghistory.revert('tenants_event', (SELECT min(pgh_id) FROM tenants_event"
                           " WHERE pgh_obj_id = '[1, 4]'))")
    assert value(coord, "SELECT status FROM tenants WHERE tenant_id = 1 AND id = 4") == "new"
    assert value(coord, "SELECT pgh_label FROM tenants_event WHERE pgh_id = %s AND tenant_id = 1", written) == "update"


def test_coordinator_dump_and_restore(coord: psycopg.Connection[Any], cluster: harness.CitusCluster,
                                      tmp_path: Any) -> None:
    """pg_dump of a coordinator is a logical dump of every table, distributed ones read through
    it, history and registry included; Citus's metadata is not in it (its pg_dist_* tables are
    not dumped), so a restore has plain local tables. Restored into a fresh coordinator: history
    reads back, reset_identities() moves the event tables' pgh_id past the workers' ranges, and
    distribute() distributes table and history again (README)."""
    import subprocess

    distributed(coord, "kept")
    coord.execute("SELECT pghistory.track('kept', context => 'json')")
    with coord.transaction():
        coord.execute("""SELECT pghistory.set_context('{"user": "alice"}')""")
        coord.execute("INSERT INTO kept SELECT g, 'new', g FROM generate_series(1, 4) AS g")
    coord.execute("UPDATE kept SET status = 'paid' WHERE id = 1")
    before = rows(coord, "SELECT pgh_id, pgh_label, id, status, pgh_context FROM kept_event ORDER BY pgh_id")
    dump = tmp_path / "coordinator.sql"
    result = subprocess.run([str(cluster.coordinator.bin("pg_dump")), "--no-password", "-f", str(dump),
                             "-d", cluster.coordinator.dsn()], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "create_distributed_table" not in dump.read_text()  # the distribution is not dumped
    with harness.Server(cluster.build, settings=harness.CITUS_SETTINGS) as fresh:
        result = subprocess.run([str(fresh.bin("psql")), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-f", str(dump),
                                 "-d", fresh.dsn()], capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
        with fresh.connect() as conn:
            assert rows(conn, "SELECT pgh_id, pgh_label, id, status, pgh_context FROM kept_event"
                              " ORDER BY pgh_id") == before
            assert value(conn, "SELECT count(*) FROM citus_tables WHERE table_name = 'kept'::regclass") == 0
            # the workers' pgh_id ranges are above the restored sequence: it must be moved past them
            # (restored as a plain table, kept_event takes pgh_id from pghistory.event_id_seq, which
            # pghistory moved past them as it followed the restore's ALTER TABLE; reset_identities()
            # would otherwise)
            conn.execute("SELECT * FROM pghistory.reset_identities()")
            conn.execute("UPDATE kept SET status = 'shipped' WHERE id = 1")
            # (the sequence is every event table's: the next pgh_id is past kept_event's, not next to it)
            assert value(conn, "SELECT pgh_label FROM kept_event WHERE pgh_id > %s",
                         max(r[0] for r in before)) == "update"
            assert rows(conn, "SELECT pgh_label, pgh_diff FROM pghistory.events('kept'::regclass, obj_id => '1')"
                              " ORDER BY pgh_id") == [
                ("insert", None), ("update", {"status": ["new", "paid"]}), ("update", {"status": ["paid", "shipped"]})]
            # distributed again, on a single-node coordinator, history along
            conn.execute("SELECT citus_set_coordinator_host('127.0.0.1', %s)", (fresh.port,))
            conn.execute("SELECT citus_set_node_property('127.0.0.1', %s, 'shouldhaveshards', true)", (fresh.port,))
            conn.execute("SELECT pghistory.distribute('kept', 'id', shard_count => 4)")
            assert value(conn, "SELECT citus_table_type FROM citus_tables"
                               " WHERE table_name = 'kept_event'::regclass") == "distributed"
            assert value(conn, "SELECT count(*) FROM kept_event") == len(before) + 1
