\echo Use "ALTER EXTENSION pghistory UPDATE TO '0.2.0'" to load this file. \quit

-- pghistory 0.1.0 -> 0.2.0.
--
-- This file holds what the code parts cannot redo by themselves: changes
-- to the extension's tables and types, and functions or views that are
-- dropped or change their signature. The Makefile appends every code part
-- (CREATE OR REPLACE of each function and view, privileges.sql) and
-- update_end.sql (regenerates the trigger functions) to build the script
-- that ALTER EXTENSION runs.

-- The context table records which session user created each row (see
-- tables.sql). Rows of 0.1.0 keep NULL there: their creator is unknown,
-- so no write changes them any more.
ALTER TABLE pghistory.context ADD COLUMN created_by name;
ALTER TABLE pghistory.context ALTER COLUMN created_by SET DEFAULT session_user;
COMMENT ON TABLE pghistory.context IS
    'pghistory: one row per application context (who, why); events point at it through pgh_context_id. '
    'Only the session user that created a row (created_by) changes its metadata; '
    'writes under its id by other roles leave it as it is';

-- The per-transaction markers pghistory._attached and
-- pghistory._following_schema were settings any role could set; they are
-- gone (see context.sql and event_triggers.sql). The function that read
-- the second is dropped by update_end.sql: the event triggers of 0.1.0
-- call it until the code parts have replaced them.

-- track() takes backfill (a baseline of the rows already there): the
-- signature of 0.1.0 goes, and the code parts create the new one.
DROP FUNCTION pghistory.track(regclass, pghistory.tracker[], text[], text[], text, text, text, boolean);

-- expressions.sql: _update_pairing() makes either join of the update
-- statement's two (see _update_statement() in trigger_parts.sql)
DROP FUNCTION pghistory._update_pairing(regclass, text);

-- events.sql: _events_query() takes the names of the filters given, not
-- five flags
DROP FUNCTION pghistory._events_query(regclass, text, pghistory.tracker[], boolean,
                                      boolean, boolean, boolean, boolean, boolean);

-- The registry records the trigger functions it made, and changes only
-- through pghistory's functions (registry.sql). The functions of 0.1.0 are
-- found here by the name 0.1.0 gave them, for the last time.
ALTER TABLE pghistory.tracked ADD COLUMN trigger_functions name[] NOT NULL DEFAULT '{}';
UPDATE pghistory.tracked AS t
   SET trigger_functions = ARRAY(
           SELECT p.proname FROM unnest(t.trackers) WITH ORDINALITY AS k
             JOIN pg_catalog.pg_proc AS p
               ON p.pronamespace = 'pghistory'::regnamespace AND p.pronargs = 0
              AND p.proname = pghistory._trigger_function_name(t.tracked_table, k.label)
            ORDER BY k.ordinality);
COMMENT ON TABLE pghistory.tracked IS
    'pghistory: the tracked tables and their configuration (see the pghistory.tracking view); '
    'changed only through pghistory''s functions';
DROP FUNCTION pghistory._forget_dropped_tables(oid[], text[]);

-- History at scale: partition sizes and retention, and the record of
-- redactions (tables.sql).
-- Per event table: its partition size (track(..., partition_by)) and its
-- retention (set_retention()), applied by maintain(). Written only through
-- _set_policy(), which checks the caller owns the event table.
CREATE TABLE pghistory.history_policy (
    event_table  regclass PRIMARY KEY,
    partition_by interval,            -- NULL: not partitioned by pghistory
    keep         interval,            -- NULL: history is kept forever
    keep_latest  boolean  NOT NULL DEFAULT true
);
COMMENT ON TABLE pghistory.history_policy IS
    'pghistory: partition size and retention of each event table, applied by pghistory.maintain(); '
    'changed only through track(partition_by) and set_retention()';

-- One row per redact() call: when, by whom, what was erased (the values
-- themselves are gone). Readable by the owners of the event table.
CREATE TABLE pghistory.redaction (
    event_table  regclass    NOT NULL,
    obj_id       text        NOT NULL,
    columns      text[]      NOT NULL,
    context_keys text[]      NOT NULL DEFAULT '{}',
    events       bigint      NOT NULL,
    redacted_at  timestamptz NOT NULL DEFAULT pg_catalog.now(),
    redacted_by  name        NOT NULL DEFAULT session_user
);
COMMENT ON TABLE pghistory.redaction IS
    'pghistory: the redactions made by pghistory.redact(): which object, columns and context keys, when, by whom';
DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_catalog.pg_extension AS e WHERE e.extname = 'pghistory') THEN
        PERFORM pg_catalog.pg_extension_config_dump('pghistory.history_policy', '');
        PERFORM pg_catalog.pg_extension_config_dump('pghistory.redaction', '');
    END IF;
END
$$;

-- pgh_id: one sequence numbers the events of every event table
-- (tables.sql), so that pgh_id orders them across tables as they were
-- written. The event tables of 0.1.0 give up their own identity and take
-- their pgh_id from it, which starts past every pgh_id there is; their
-- events keep their numbers (and so their slugs). Their primary key index
-- is packed full from now on, as a new one is (event_tables.sql).
CREATE SEQUENCE pghistory.event_id_seq AS bigint CACHE 1;
COMMENT ON SEQUENCE pghistory.event_id_seq IS
    'pghistory: the pgh_id of every event table, so that pgh_id orders events across tables as they were written';
DO $$
DECLARE
    v_table regclass;
    v_max bigint;
    v_all bigint;
BEGIN
    IF EXISTS (SELECT FROM pg_catalog.pg_extension AS e WHERE e.extname = 'pghistory') THEN
        PERFORM pg_catalog.pg_extension_config_dump('pghistory.event_id_seq', '');
    END IF;
    FOR v_table IN SELECT t.event_table FROM pghistory.tracked AS t ORDER BY t.event_table::text LOOP
        EXECUTE format('ALTER TABLE %s ALTER COLUMN pgh_id DROP IDENTITY IF EXISTS', v_table);
        EXECUTE format('ALTER TABLE %s ALTER COLUMN pgh_id SET DEFAULT pg_catalog.nextval(''pghistory.event_id_seq'')',
                       v_table);
        EXECUTE format('ALTER INDEX %s SET (fillfactor = 100)',
                       (SELECT k.conindid::regclass FROM pg_catalog.pg_constraint AS k
                         WHERE k.conrelid = v_table AND k.contype = 'p'));
        EXECUTE format('SELECT max(pgh_id) FROM %s', v_table) INTO v_max;
        v_all := greatest(v_all, v_max);
    END LOOP;
    IF v_all IS NOT NULL THEN
        PERFORM pg_catalog.setval('pghistory.event_id_seq', v_all, true);
    END IF;
END
$$;

-- The pgh_id of the event tables Citus distributes, which each node numbers
-- itself (citus.sql): the node of Citus group g draws from blocks of 2^44
-- numbers, the blocks b = g (mod 256) from b = 256 + g up, so no two nodes
-- draw the same number, and each node moves up to a block of its own above
-- the events of a shard that arrives there, so an object's events stay in
-- write order when its shard moves. Citus leaves an extension's sequence
-- alone on every node; pghistory sets a node's when a shard is made on it
-- or moved to it (_citus_number_above).
CREATE SEQUENCE pghistory.node_event_id_seq AS bigint CACHE 1;
COMMENT ON SEQUENCE pghistory.node_event_id_seq IS
    'pghistory: the pgh_id of distributed (Citus) event tables, numbered by each node in blocks of its own';
DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_catalog.pg_extension AS e WHERE e.extname = 'pghistory') THEN
        PERFORM pg_catalog.pg_extension_config_dump('pghistory.node_event_id_seq', '');
    END IF;
END
$$;

-- pgh_xact: the transaction that wrote each event, so that events can be
-- grouped by transaction across tables (event_tables.sql). Events 0.1.0
-- recorded keep NULL there: their transaction is not known (a volatile
-- default in ADD COLUMN would give them all the one running this update).
DO $$
DECLARE
    v_table regclass;
BEGIN
    FOR v_table IN SELECT t.event_table FROM pghistory.tracked AS t ORDER BY t.event_table::text LOOP
        EXECUTE format('ALTER TABLE %s ADD COLUMN pgh_xact xid8', v_table);
        EXECUTE format('ALTER TABLE %s ALTER COLUMN pgh_xact SET DEFAULT pg_catalog.pg_current_xact_id()', v_table);
    END LOOP;
END
$$;

-- pghistory.tracking shows trackers as the calls that make them (text[])
DROP VIEW pghistory.tracking;

-- A table with a composite primary key has an object identity from 0.2.0
-- on: pgh_obj_id (text in 0.1.0 already, and NULL) holds the key as a JSON
-- array in key order (identity.sql). Events 0.1.0 recorded get theirs from
-- the key columns they hold, when the event table has all of them.
DO $$
DECLARE
    v_table record;
BEGIN
    FOR v_table IN
        SELECT t.event_table, string_agg(format('e.%I', a.attname), ', ' ORDER BY k.n) AS key_columns
          FROM pghistory.tracked AS t
          JOIN pg_catalog.pg_index AS i ON i.indrelid = t.tracked_table AND i.indisprimary AND i.indnkeyatts > 1
         CROSS JOIN LATERAL unnest(i.indkey[0:i.indnkeyatts - 1]) WITH ORDINALITY AS k(attnum, n)
          JOIN pg_catalog.pg_attribute AS a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
         WHERE (SELECT format_type(o.atttypid, o.atttypmod) FROM pg_catalog.pg_attribute AS o
                 WHERE o.attrelid = t.event_table AND o.attname = 'pgh_obj_id' AND NOT o.attisdropped) = 'text'
         GROUP BY t.event_table, i.indnkeyatts
        HAVING count(*) FILTER (WHERE EXISTS (SELECT FROM pg_catalog.pg_attribute AS e
                                               WHERE e.attrelid = t.event_table AND e.attname = a.attname
                                                 AND NOT e.attisdropped)) = i.indnkeyatts
    LOOP
        SET LOCAL pghistory.allow_history_changes = on;
        EXECUTE format('UPDATE %s AS e SET pgh_obj_id = pg_catalog.jsonb_build_array(%s)::text WHERE e.pgh_obj_id IS NULL',
                       v_table.event_table, v_table.key_columns);
        RESET pghistory.allow_history_changes;
    END LOOP;
END
$$;

-- events() takes changed (events whose diff names one of those columns);
-- aggregate_events reads through it and is made again by the code parts
DROP VIEW pghistory.aggregate_events;
DROP FUNCTION pghistory.events(regclass, text, timestamptz, timestamptz, text[], uuid);
