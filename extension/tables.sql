
-- ---------------------------------------------------------------------------
-- tables.sql: the extension's own tables
-- ---------------------------------------------------------------------------

-- Every role may call pghistory's functions (set_context() above all);
-- what they may read or change is decided by the grants on each table.
GRANT USAGE ON SCHEMA pghistory TO PUBLIC;

-- Who and why: one row per context an application started. Written by the
-- trigger functions (upsert, at most once per statement), never deleted.
-- The column names match django-pghistory's, so a database written by both
-- keeps one history.
CREATE TABLE pghistory.context (
    id         uuid        PRIMARY KEY,
    created_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    updated_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    metadata   jsonb       NOT NULL DEFAULT '{}'
);
COMMENT ON TABLE pghistory.context IS
    'pghistory: one row per application context (who, why); events point at it through pgh_context_id';

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
    tracked_at    timestamptz         NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE pghistory.tracked IS
    'pghistory: the tracked tables and their configuration (see the pghistory.tracking view)';

-- Whether the current role owns a table (directly or through a role it
-- belongs to): what it takes to change how the table is tracked.
CREATE FUNCTION pghistory._owns(p_table regclass)
RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT pg_has_role(current_user, c.relowner, 'USAGE')
      FROM pg_catalog.pg_class AS c
     WHERE c.oid = p_table
$$;

-- Everyone may see what is tracked; each role may register, change and
-- remove only the tables it owns (track() and untrack() run as their
-- caller and write here).
ALTER TABLE pghistory.tracked ENABLE ROW LEVEL SECURITY;
CREATE POLICY everyone_reads ON pghistory.tracked FOR SELECT USING (true);
CREATE POLICY owners_register ON pghistory.tracked FOR INSERT WITH CHECK (pghistory._owns(tracked_table));
CREATE POLICY owners_change ON pghistory.tracked FOR UPDATE
    USING (pghistory._owns(tracked_table)) WITH CHECK (pghistory._owns(tracked_table));
CREATE POLICY owners_remove ON pghistory.tracked FOR DELETE USING (pghistory._owns(tracked_table));
GRANT SELECT, INSERT, UPDATE, DELETE ON pghistory.tracked TO PUBLIC;

-- Both hold user data: pg_dump must dump their rows.
SELECT pg_catalog.pg_extension_config_dump('pghistory.context', '');
SELECT pg_catalog.pg_extension_config_dump('pghistory.tracked', '');
