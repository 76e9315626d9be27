"""Property-based bad input: generated names, types, metadata and tracker arguments.

Each example either tracks correctly (history equals the writes) or is refused with
a pghistory error that leaves nothing half-configured."""

from __future__ import annotations

import json
import uuid
from typing import Any

import psycopg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from psycopg import sql

from sqlhelpers import rows, value

EXAMPLES = settings(max_examples=int(__import__("os").environ.get("PGH_EXAMPLES", "25")))

# Identifiers: quotes, spaces, dots, unicode, reserved words; at most 63 bytes, never NUL.
RESERVED = ["select", "from", "table", "user", "order", "group", "Select", "ROW", "new", "old", "pgh"]
identifiers = st.one_of(
    st.sampled_from(RESERVED),
    st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
            min_size=1, max_size=30),
    st.just("x" * 63),
    st.just("é" * 31),  # 62 bytes
).filter(lambda s: len(s.encode()) <= 63 and not s.lower().startswith("pgh_"))

# Column types with a strategy for their values (as SQL literals, cast explicitly).
TYPES: dict[str, st.SearchStrategy[Any]] = {
    "int": st.integers(-2**31, 2**31 - 1),
    "bigint": st.integers(-2**63, 2**63 - 1),
    "text": st.text(alphabet=st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)), max_size=20),
    "numeric": st.decimals(allow_nan=False, allow_infinity=False, places=3, min_value=-10**6, max_value=10**6),
    "boolean": st.booleans(),
    "jsonb": st.dictionaries(st.text(max_size=5, alphabet="abc"), st.integers(0, 9), max_size=3),
    "json": st.lists(st.integers(0, 9), max_size=3),
    "uuid": st.uuids(),
    "bytea": st.binary(max_size=10),
    "text[]": st.lists(st.text(alphabet="ab c,\"{}", max_size=4), max_size=3),
    "timestamptz": st.datetimes(timezones=st.just(__import__("datetime").timezone.utc)),
}


def literal(type_name: str, v: Any) -> sql.Composable:
    if type_name in ("jsonb", "json"):
        v = json.dumps(v)
    return sql.SQL("({})::{}").format(sql.Literal(v), sql.SQL(type_name))


def tracked_state(conn: psycopg.Connection, schema: str) -> tuple[int, int, int]:
    """Registry rows, pghistory triggers and generated functions that touch this schema."""
    return (
        value(conn, "SELECT count(*) FROM pghistory.tracked t JOIN pg_class c ON c.oid = t.tracked_table "
                    "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s", schema),
        value(conn, "SELECT count(*) FROM pg_trigger g JOIN pg_class c ON c.oid = g.tgrelid "
                    "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s AND g.tgname LIKE 'pgh%%'",
              schema),
        value(conn, "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                    "WHERE n.nspname = %s AND c.relname LIKE '%%\\_event'", schema),
    )


def drop_schema(conn: psycopg.Connection, schema: str) -> None:
    for (tbl,) in rows(conn, "SELECT t.tracked_table::text FROM pghistory.tracked t JOIN pg_class c "
                             "ON c.oid = t.tracked_table JOIN pg_namespace n ON n.oid = c.relnamespace "
                             "WHERE n.nspname = %s", schema):
        conn.execute("SELECT pghistory.untrack(%s, drop_events => true)", (tbl,))
    conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))


@EXAMPLES
@given(
    table=identifiers,
    columns=st.lists(st.tuples(identifiers, st.sampled_from(sorted(TYPES))), min_size=1, max_size=4,
                     unique_by=lambda c: c[0]),
    level=st.sampled_from(["statement", "row"]),
    context=st.sampled_from(["fk", "json", "none"]),
    data=st.data(),
)
def test_any_table_shape_tracks_every_write(conn, table, columns, level, context, data):
    columns = [c for c in columns if c[0] not in ("id", "v")]
    schema = f"prop_{uuid.uuid4().hex[:8]}"
    conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    try:
        qualified = sql.Identifier(schema, table)
        definition = sql.SQL(", ").join(
            [sql.SQL("id int PRIMARY KEY"), sql.SQL("v int")]
            + [sql.SQL("{} {}").format(sql.Identifier(n), sql.SQL(t)) for n, t in columns])
        conn.execute(sql.SQL("CREATE TABLE {} ({})").format(qualified, definition))
        event_table = value(conn, "SELECT pghistory.track(%s, level => %s, context => %s)::text",
                            qualified.as_string(conn), level, context)
        n = data.draw(st.integers(1, 4))
        for i in range(n):
            values = [sql.Literal(i), sql.Literal(0)] + [literal(t, data.draw(TYPES[t])) for _, t in columns]
            conn.execute(sql.SQL("INSERT INTO {} VALUES ({})").format(qualified, sql.SQL(", ").join(values)))
        snapshot = sql.SQL("SELECT to_jsonb(t.*) FROM {} AS t ORDER BY id").format(qualified)
        inserted = [r[0] for r in conn.execute(snapshot)]
        conn.execute(sql.SQL("UPDATE {} SET v = v + 1").format(qualified))
        updated = [r[0] for r in conn.execute(snapshot)]
        conn.execute(sql.SQL("DELETE FROM {}").format(qualified))

        history = conn.execute(sql.SQL(
            "SELECT pgh_label, to_jsonb(e.*) - ARRAY['pgh_id', 'pgh_created_at', 'pgh_xact', 'pgh_label', 'pgh_obj_id', "
            "'pgh_context_id', 'pgh_context'] FROM {} AS e ORDER BY pgh_id").format(sql.SQL(event_table))).fetchall()
        by_label: dict[str, list[Any]] = {}
        for label, doc in history:
            by_label.setdefault(label, []).append(doc)
        key = lambda d: d["id"]  # noqa: E731
        assert sorted(by_label.pop("insert"), key=key) == inserted
        assert sorted(by_label.pop("update"), key=key) == updated
        assert sorted(by_label.pop("delete"), key=key) == updated
        assert by_label == {}
    finally:
        drop_schema(conn, schema)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10**9, 10**9)
    | st.text(alphabet=st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)), max_size=30),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(alphabet=st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)),
                              max_size=10), children, max_size=4),
    max_leaves=20,
)


@EXAMPLES
@given(metadata=json_values, huge=st.booleans())
def test_any_metadata_document_is_kept_exactly_or_refused(conn, metadata, huge):
    conn.execute("CREATE TABLE IF NOT EXISTS m (id int PRIMARY KEY, v int)")
    conn.execute("SELECT pghistory.track('m')")
    if huge and isinstance(metadata, dict):
        metadata["big"] = "x" * 1_000_000
    conn.execute("INSERT INTO m VALUES (1, 0) ON CONFLICT (id) DO NOTHING")
    before = value(conn, "SELECT count(*) FROM m_event")
    if isinstance(metadata, dict):
        with conn.transaction():
            context_id = value(conn, "SELECT pghistory.set_context(%s::jsonb)", json.dumps(metadata))
            conn.execute("UPDATE m SET v = v + 1")
        assert value(conn, "SELECT metadata FROM pghistory.context WHERE id = %s", context_id) == metadata
        assert value(conn, "SELECT pgh_context_id FROM m_event ORDER BY pgh_id DESC LIMIT 1") == context_id
    else:
        with pytest.raises(psycopg.errors.InvalidParameterValue, match="metadata must be a JSON object"):
            conn.execute("SELECT pghistory.set_context(%s::jsonb)", (json.dumps(metadata),))
        with conn.transaction():
            conn.execute("SELECT set_config('pghistory.context_id', %s, true), "
                         "set_config('pghistory.context_metadata', %s, true)", (str(uuid.uuid4()), json.dumps(metadata)))
            with pytest.raises(psycopg.errors.InvalidParameterValue, match="must be a JSON object"):
                with conn.transaction():
                    conn.execute("UPDATE m SET v = v + 1")
        assert value(conn, "SELECT count(*) FROM m_event") == before


CONDITIONS = [None, "NEW.a > 0", "OLD.a IS DISTINCT FROM NEW.a", "OLD.nope = 1", "NEW.a >", "true",
              "1", "(SELECT true)", "NEW.a > 0); DROP TABLE x; --"]

trackers = st.lists(
    st.tuples(
        st.sampled_from(["insert_event", "update_event", "delete_event", "truncate_event", "manual_event"]),
        st.one_of(st.sampled_from(["insert", "update", "x", "", " "]), identifiers),
        st.sampled_from(CONDITIONS),
        st.one_of(st.none(), st.lists(st.sampled_from(["a", "b", "nope", "A"]), max_size=2)),
    ),
    min_size=0, max_size=4,
)


def tracker_sql(kind: str, label: str, condition: str | None, changed: list[str] | None) -> sql.Composable:
    args = [sql.Literal(label)]
    if kind in ("insert_event", "delete_event") and condition is not None:
        args.append(sql.SQL("condition => {}").format(sql.Literal(condition)))
    if kind == "update_event":
        if changed is not None:
            args.append(sql.SQL("changed => {}::text[]").format(sql.Literal(changed)))
        if condition is not None:
            args.append(sql.SQL("condition => {}").format(sql.Literal(condition)))
    return sql.SQL("pghistory.{}({})").format(sql.Identifier(kind), sql.SQL(", ").join(args))


@EXAMPLES
@given(spec=trackers, level=st.sampled_from(["statement", "row", "both"]),
       fields=st.one_of(st.none(), st.lists(st.sampled_from(["id", "a", "b", "nope"]), max_size=3, unique=True)))
def test_any_tracker_arguments_track_or_are_refused_cleanly(conn, spec, level, fields):
    schema = f"prop_{uuid.uuid4().hex[:8]}"
    conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    table = sql.Identifier(schema, "t")
    conn.execute(sql.SQL("CREATE TABLE {} (id int PRIMARY KEY, a int, b text)").format(table))
    call = sql.SQL("SELECT pghistory.track({}, trackers => ARRAY[{}]::pghistory.tracker[], fields => {}::text[], "
                   "level => {})").format(
        sql.Literal(table.as_string(conn)), sql.SQL(", ").join(tracker_sql(*t) for t in spec),
        sql.Literal(fields), sql.Literal(level))
    try:
        try:
            conn.execute(call)
        except psycopg.Error as exc:
            assert exc.diag.message_primary is not None
            assert exc.diag.message_primary.startswith("pghistory"), exc.diag.message_primary
            assert tracked_state(conn, schema) == (0, 0, 0)
            return
        labels = [t[1] for t in spec]
        assert value(conn, "SELECT labels FROM pghistory.tracking WHERE tracked_table = %s::regclass",
                     table.as_string(conn)) == labels
        conn.execute(sql.SQL("INSERT INTO {} VALUES (1, 1, 'x')").format(table))
        conn.execute(sql.SQL("UPDATE {} SET a = 2").format(table))
        conn.execute(sql.SQL("DELETE FROM {}").format(table))
        recorded = {r[0] for r in rows(conn, sql.SQL("SELECT DISTINCT pgh_label FROM {}").format(
            sql.Identifier(schema, "t_event")).as_string(conn))}
        assert recorded <= set(labels)
    finally:
        drop_schema(conn, schema)
