
-- ---------------------------------------------------------------------------
-- tables.sql: the extension's own tables: the context table and the registry
-- of tracked tables (their privileges are in privileges.sql)
-- ---------------------------------------------------------------------------

-- Who and why: one row per context an application started. Written by the
-- trigger functions (an insert, or a refresh of the metadata, once per
-- statement), never deleted. The first four columns match
-- django-pghistory's, so a database written by both keeps one history.
-- created_by is the session user (the role that logged in) whose write
-- created the row: only writes of that same session user change the
-- metadata later. A write under the same id by another role points its
-- events at the context but leaves the row as it is (json-mode events
-- carry their own metadata). NULL: created before 0.2.0, by a role nobody
-- recorded; such rows are never changed.
CREATE TABLE pghistory.context (
    id         uuid        PRIMARY KEY,
    created_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    updated_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    metadata   jsonb       NOT NULL DEFAULT '{}',
    created_by name        DEFAULT session_user
);
COMMENT ON TABLE pghistory.context IS
    'pghistory: one row per application context (who, why); events point at it through pgh_context_id. '
    'Only the session user that created a row (created_by) changes its metadata; '
    'writes under its id by other roles leave it as it is';

-- The registry: one row per tracked table, holding exactly what track() was
-- given. Trigger functions and event table columns are derived from it, so
-- regenerating them from here always gives the same result.
CREATE TABLE pghistory.tracked (
    tracked_table regclass            PRIMARY KEY,
    event_table   regclass            NOT NULL UNIQUE,
    trackers      pghistory.tracker[] NOT NULL,
    fields        text[],             -- as given; NULL: every column
    exclude       text[],             -- as given; NULL: none
    context       text                NOT NULL CHECK (context IN ('fk', 'json', 'none')),
    level         text                NOT NULL CHECK (level IN ('statement', 'row')),
    append_only   boolean             NOT NULL,
    tracked_at    timestamptz         NOT NULL DEFAULT pg_catalog.now(),
    -- the names of the trigger functions made for it, in schema pghistory:
    -- how pghistory finds its own functions (never by parsing a name)
    trigger_functions name[]          NOT NULL DEFAULT '{}'
);
COMMENT ON TABLE pghistory.tracked IS
    'pghistory: the tracked tables and their configuration (see the pghistory.tracking view); '
    'changed only through pghistory''s functions';

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

-- The pgh_id of every event table: one sequence for all of them, so that
-- pgh_id alone puts the events of several tables in the order they were
-- written (those of one transaction, and of transactions one after the
-- other). Its cache stays at 1: a cache per session would hand two sessions
-- interleaved ranges, and pgh_id order would no longer be write order.
-- Each event table takes its pgh_id from it by default
-- (event_tables.sql); the trigger functions never name it.
CREATE SEQUENCE pghistory.event_id_seq AS bigint CACHE 1;
COMMENT ON SEQUENCE pghistory.event_id_seq IS
    'pghistory: the pgh_id of every event table, so that pgh_id orders events across tables as they were written';

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

-- All of them hold user data: pg_dump must dump their rows. (Only an extension
-- script can say so; the plain script's tables are dumped anyway.)
DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_catalog.pg_extension AS e WHERE e.extname = 'pghistory') THEN
        PERFORM pg_catalog.pg_extension_config_dump('pghistory.context', '');
        PERFORM pg_catalog.pg_extension_config_dump('pghistory.tracked', '');
        PERFORM pg_catalog.pg_extension_config_dump('pghistory.history_policy', '');
        PERFORM pg_catalog.pg_extension_config_dump('pghistory.redaction', '');
        -- and the sequence's position: a restored database goes on numbering
        -- after the history it restored
        PERFORM pg_catalog.pg_extension_config_dump('pghistory.event_id_seq', '');
        PERFORM pg_catalog.pg_extension_config_dump('pghistory.node_event_id_seq', '');
    END IF;
END
$$;
