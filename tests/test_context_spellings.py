"""The context settings' spellings, defined once: the readers
(``current_context_id()``, ``_context_metadata()``) say what each setting
accepts; the inline test of the generated trigger functions and of
``_attach_context()`` (``_usual_spelling()``) only skips the reader, and never
reads a value otherwise than the reader does."""

from __future__ import annotations

import uuid

import psycopg
import pytest
from psycopg import sql

from sqlhelpers import rows, value

ID = "6f1c2a9e-3b4d-4e5f-8a7b-9c0d1e2f3a4b"
IDS = [ID, ID.upper(), ID.replace("-", ""), "{" + ID + "}", "", "not-a-uuid",
       "zzzzzzzz-zzzz-zzzz-zzzz-zzzzzzzzzzzz", ID[:-1] + "-", "6f1c2a9e3b4d-4e5f-8a7b-9c0d1e2f3a4b"]
METADATA = ['{"user": "x"}', ' {"user": "x"} ', "{}", "", "[1]", "nope", '{"a": 1} x']


def _usual(conn: psycopg.Connection, setting: str, text: str) -> bool:
    test = value(conn, "SELECT pghistory._usual_spelling(%s, %s)", setting, f"{sql.Literal(text).as_string(conn)}::text")
    return bool(value(conn, f"SELECT {test}"))


def _parse(conn: psycopg.Connection, setting: str, text: str) -> tuple[str, object]:
    """What the reader of `setting` makes of `text`: ("ok", value) or ("refused", message)."""
    reader = {"pghistory.context_id": "current_context_id", "pghistory.context_metadata": "_context_metadata"}[setting]
    try:
        with conn.transaction():
            conn.execute("SELECT set_config('pghistory.context_id', %s, true)",
                         (text if setting == "pghistory.context_id" else ID,))
            conn.execute("SELECT set_config(%s, %s, true)", (setting, text))
            return ("ok", value(conn, f"SELECT pghistory.{reader}()"))
    except (psycopg.errors.InvalidParameterValue, psycopg.errors.InvalidTextRepresentation) as ex:
        return ("refused", ex.diag.message_primary)


@pytest.mark.parametrize("text", IDS)
def test_the_usual_id_spelling_is_one_the_parser_reads_alike(conn, text):
    if _usual(conn, "pghistory.context_id", text):
        assert _parse(conn, "pghistory.context_id", text) == ("ok", uuid.UUID(text))


@pytest.mark.parametrize("text", METADATA)
def test_the_usual_metadata_spelling_is_one_the_parser_reads_alike(conn, text):
    if _usual(conn, "pghistory.context_metadata", text):
        assert _parse(conn, "pghistory.context_metadata", text) == ("ok", value(conn, "SELECT %s::jsonb", text))


def test_attach_context_writes_the_usual_metadata_spelling_out(conn):
    source = value(conn, "SELECT pg_get_functiondef('pghistory._attach_context(uuid, text)'::regprocedure)")
    usual = value(conn, "SELECT pghistory._usual_spelling('pghistory.context_metadata', 'p_metadata')")
    assert f"CASE WHEN {usual} THEN p_metadata::jsonb" in source


def test_which_spellings_are_usual(conn):
    assert [t for t in IDS if _usual(conn, "pghistory.context_id", t)] == [ID]
    assert [t for t in METADATA if _usual(conn, "pghistory.context_metadata", t)] == ['{"user": "x"}', "{}"]


@pytest.mark.parametrize("level", ["statement", "row"])
def test_a_trigger_reads_every_spelling_as_the_parser_does(conn, level):
    conn.execute("CREATE TABLE orders (id int PRIMARY KEY)")
    conn.execute("SELECT pghistory.track('orders', context => 'json', level => %s)", (level,))
    for n, (text, metadata) in enumerate([(t, '{"user": "x"}') for t in IDS] + [(ID, m) for m in METADATA]):
        parsed_id = _parse(conn, "pghistory.context_id", text)
        parsed_metadata = _parse(conn, "pghistory.context_metadata", metadata)
        try:
            with conn.transaction():
                conn.execute("SELECT set_config('pghistory.context_id', %s, true), "
                             "set_config('pghistory.context_metadata', %s, true)", (text, metadata))
                conn.execute("INSERT INTO orders VALUES (%s)", (n,))
            got = rows(conn, "SELECT pgh_context_id, pgh_context FROM orders_event WHERE id = %s", n)[0]
        except (psycopg.errors.InvalidParameterValue, psycopg.errors.InvalidTextRepresentation) as ex:
            got = ex.diag.message_primary
        if parsed_id[0] == "refused":
            assert got == parsed_id[1], text
        elif parsed_id[1] is None:  # no id: the transaction's own, with the metadata
            assert isinstance(got, tuple) and got[0] is not None and got[1] == {"user": "x"}, text
        elif parsed_metadata[0] == "refused":
            assert got == parsed_metadata[1], metadata
        else:
            assert got == (parsed_id[1], parsed_metadata[1]), (text, metadata)
