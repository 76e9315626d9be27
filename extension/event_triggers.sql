
-- ---------------------------------------------------------------------------
-- event_triggers.sql: the event triggers that follow ALTER TABLE and DROP
--
--
-- The trigger functions name their columns statically, so every schema
-- change of a tracked table must be followed. Three event triggers do it:
--   pghistory_before_ddl  (ddl_command_start, ALTER TABLE / ALTER SCHEMA)
--       notes what every tracked table looks like before the command;
--   pghistory_after_ddl   (ddl_command_end, ALTER TABLE / CREATE TABLE /
--       ALTER SCHEMA) compares, and brings the changed tables' registry
--       rows, event tables and trigger functions in step;
--   pghistory_on_drop     (sql_drop) forgets dropped tables, keeps their
--       history, and refuses to drop the history of a table still tracked.
-- What each change does:
--   ADD COLUMN        the column is added to the event table and recorded
--                     (unless `fields` lists the columns to track);
--   RENAME COLUMN     renamed in the event table and in fields, exclude,
--                     and the trackers' `changed` and conditions;
--   DROP COLUMN       kept in the event table with its history; new events
--                     leave it NULL; removed from fields, exclude, changed;
--   ALTER .. TYPE     the event table's column is converted the way
--                     PostgreSQL converts on assignment, else with a cast;
--                     when the history does not convert, the ALTER fails;
--   RENAME, SET SCHEMA  tracking goes on (the trigger functions are renamed);
--   OWNER TO          the event table and the trigger functions go to the
--                     new owner with the table (they run with its rights);
--   partitions        new and attached partitions get the triggers;
--   DROP TABLE        the history stays, the registry row goes.
-- Creating event triggers takes a superuser, or a managed service's admin
-- role that may (RDS's master user, cloudsqlsuperuser, Supabase's
-- postgres): the install tries, and run by anyone else leaves them out;
-- then pghistory.refresh(table) brings a table in step after ALTER TABLE,
-- and such a role can add them later with pghistory.install_event_triggers().
-- ---------------------------------------------------------------------------

-- ddl_command_start of ALTER TABLE and ALTER SCHEMA: remember what the
-- tracked tables look like, for pghistory._after_ddl() to compare.
CREATE OR REPLACE FUNCTION pghistory._before_ddl()
RETURNS event_trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM set_config('pghistory._schema_before', pghistory._schema_snapshot()::text, true);
END
$$;

-- ddl_command_end of ALTER TABLE, CREATE TABLE and ALTER SCHEMA: follows
-- the changes of the tracked tables that the command changed (their
-- columns, names, primary keys or partitions).
CREATE OR REPLACE FUNCTION pghistory._after_ddl()
RETURNS event_trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_before jsonb;
    v_after jsonb;
    v_candidates regclass[];
    v_changed regclass[];
    v_table regclass;
BEGIN
    IF pghistory._citus_installed() THEN  -- shards made or moved here number above their events
        PERFORM pghistory._citus_follow_shards();
    END IF;
    -- The tracked tables this command may have changed: the relation it
    -- names, a tracked table whose event table or partition it is, or those
    -- in a schema it renames. Only those: other sessions change other
    -- tables meanwhile (a parallel pg_restore does), and are followed there.
    v_candidates := ARRAY(
        SELECT DISTINCT t.tracked_table
          FROM pg_event_trigger_ddl_commands() AS d
          JOIN pghistory.tracked AS t
            ON (d.classid = 'pg_class'::regclass
                AND (d.objid IN (t.tracked_table, t.event_table)
                     OR t.tracked_table IN (SELECT a.relid FROM pg_partition_ancestors(d.objid) AS a)))
            OR (d.classid = 'pg_namespace'::regclass
                AND d.objid IN (SELECT c.relnamespace FROM pg_catalog.pg_class AS c
                                 WHERE c.oid IN (t.tracked_table, t.event_table)))
         WHERE NOT d.in_extension);
    IF cardinality(v_candidates) = 0 THEN
        RETURN;
    END IF;
    IF TG_TAG = 'CREATE TABLE' THEN
        -- a new partition of a tracked table (at any depth): no before
        v_changed := v_candidates;
    ELSE
        v_before := nullif(current_setting('pghistory._schema_before', true), '')::jsonb;
        IF v_before IS NULL OR v_before = '{}' THEN
            RETURN;
        END IF;
        v_after := pghistory._schema_snapshot(v_candidates);
        v_changed := ARRAY(SELECT a.key::oid::regclass FROM jsonb_each(v_after) AS a
                            WHERE v_before ? a.key
                              AND (v_before -> a.key) - 'event_columns' <> a.value - 'event_columns');
        -- an event table keeps the columns its events are written to
        PERFORM pghistory._check_event_table(t, ARRAY(SELECT jsonb_array_elements_text(
                                                    v_before -> t.tracked_table::oid::text -> 'event_columns')))
           FROM pghistory.tracked AS t
          WHERE t.tracked_table = ANY (v_candidates)
            AND t.event_table::oid IN (SELECT d.objid FROM pg_event_trigger_ddl_commands() AS d
                                        WHERE d.classid = 'pg_class'::regclass);
    END IF;
    IF cardinality(v_changed) = 0 THEN
        RETURN;
    END IF;
    FOREACH v_table IN ARRAY v_changed LOOP
        PERFORM pghistory._follow_schema_change(v_table, v_before -> v_table::oid::text,
                    TG_TAG = 'CREATE TABLE'
                    OR v_before -> v_table::oid::text -> 'tree' IS DISTINCT FROM v_after -> v_table::oid::text -> 'tree');
    END LOOP;
    IF v_before IS NOT NULL THEN  -- the next command of the statement compares with what is now
        PERFORM set_config('pghistory._schema_before',
                           (v_before || pghistory._schema_snapshot(v_changed))::text, true);
    END IF;
END
$$;

-- sql_drop: a dropped tracked table is forgotten (its history stays); an
-- event table cannot be dropped while its table is tracked; columns of
-- tracked tables dropped by DROP ... CASCADE (of a type, say) are followed
-- like ALTER TABLE ... DROP COLUMN.
CREATE OR REPLACE FUNCTION pghistory._on_drop()
RETURNS event_trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_function name;
    v_history record;
    v_table regclass;
    v_tables regclass[];
BEGIN
    SELECT e.event_table, e.tracked_table INTO v_history
      FROM pg_event_trigger_dropped_objects() AS d
      JOIN pghistory.tracked AS e ON e.event_table::oid = d.objid
     WHERE d.classid = 'pg_class'::regclass AND d.objsubid = 0
       AND EXISTS (SELECT FROM pg_catalog.pg_class AS c WHERE c.oid = e.tracked_table)
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'pghistory: % holds the history of %, which is still tracked',
                (SELECT d.object_identity FROM pg_event_trigger_dropped_objects() AS d
                  WHERE d.objid = v_history.event_table::oid AND d.objsubid = 0 LIMIT 1),
                pghistory._qualified_name(v_history.tracked_table)
            USING ERRCODE = 'dependent_objects_still_exist',
                  HINT = format('SELECT pghistory.untrack(%L, drop_events => true) drops both; '
                                'untrack() alone stops tracking and keeps the history.',
                                pghistory._qualified_name(v_history.tracked_table));
    END IF;

    -- dropped tracked tables: their registry rows go (through the SECURITY
    -- DEFINER _forget_dropped_tables()), and so do their trigger functions,
    -- dropped here by the role that dropped the tables
    IF EXISTS (SELECT FROM pg_event_trigger_dropped_objects() AS d
                 JOIN pghistory.tracked AS t ON t.tracked_table::oid = d.objid
                WHERE d.classid = 'pg_class'::regclass AND d.objsubid = 0) THEN
        FOR v_function IN SELECT f FROM pghistory._forget_dropped_tables() AS f LOOP
            IF EXISTS (SELECT FROM pg_catalog.pg_proc AS p
                        WHERE p.pronamespace = 'pghistory'::regnamespace AND p.proname = v_function
                          AND p.pronargs = 0
                          AND NOT EXISTS (SELECT FROM pg_catalog.pg_trigger AS g WHERE g.tgfoid = p.oid)) THEN
                EXECUTE format('DROP FUNCTION pghistory.%I()', v_function);
            END IF;
        END LOOP;
    END IF;

    -- ALTER TABLE ... DROP COLUMN is followed by _after_ddl(); other drops can
    -- take columns with them
    IF TG_TAG <> 'ALTER TABLE' THEN
        v_tables := ARRAY(SELECT DISTINCT t.tracked_table
                            FROM pg_event_trigger_dropped_objects() AS d
                            JOIN pghistory.tracked AS t ON t.tracked_table::oid = d.objid
                           WHERE d.classid = 'pg_class'::regclass AND d.objsubid > 0
                             AND EXISTS (SELECT FROM pg_catalog.pg_class AS c WHERE c.oid = d.objid));
        FOREACH v_table IN ARRAY v_tables LOOP
            PERFORM pghistory._follow_schema_change(v_table, NULL);
        END LOOP;
    END IF;
END
$$;

-- Creates the event triggers that follow schema changes (those missing),
-- as members of the extension (when installed as one) so that pg_dump
-- leaves them to CREATE EXTENSION. The install calls it; a role that may
-- create event triggers can call it later for an install made without.
-- Refuses, with insufficient_privilege, when the server refuses the caller
-- CREATE EVENT TRIGGER (found by trying: managed services let roles that
-- are not superusers create them). Returns how many it created.
CREATE OR REPLACE FUNCTION pghistory.install_event_triggers()
RETURNS integer
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_trigger record;
    v_count integer := 0;
    v_in_extension boolean := EXISTS (SELECT FROM pg_catalog.pg_extension AS e WHERE e.extname = 'pghistory');
BEGIN
    FOR v_trigger IN
        SELECT * FROM (VALUES
            ('pghistory_before_ddl', 'ddl_command_start', '''ALTER TABLE'', ''ALTER SCHEMA''', '_before_ddl'),
            ('pghistory_after_ddl', 'ddl_command_end', '''ALTER TABLE'', ''CREATE TABLE'', ''ALTER SCHEMA''', '_after_ddl'),
            ('pghistory_on_drop', 'sql_drop', NULL, '_on_drop')) AS t(name, event, tags, function)
         WHERE NOT EXISTS (SELECT FROM pg_catalog.pg_event_trigger AS e WHERE e.evtname = t.name)
    LOOP
        BEGIN
            EXECUTE format('CREATE EVENT TRIGGER %I ON %s%s EXECUTE FUNCTION pghistory.%I()',
                           v_trigger.name, v_trigger.event,
                           CASE WHEN v_trigger.tags IS NOT NULL THEN ' WHEN TAG IN (' || v_trigger.tags || ')' ELSE '' END,
                           v_trigger.function);
        EXCEPTION WHEN insufficient_privilege THEN
            RAISE EXCEPTION 'pghistory: % may not create the event triggers that follow schema changes', current_user
                USING ERRCODE = 'insufficient_privilege',
                      DETAIL = SQLERRM,
                      HINT = 'Ask a superuser (or the service''s admin role) to run SELECT pghistory.install_event_triggers(). '
                             'Until then, run SELECT pghistory.refresh(''<table>'') after altering a tracked table.';
        END;
        -- inside CREATE EXTENSION it is a member already
        IF v_in_extension AND NOT EXISTS (SELECT FROM pg_catalog.pg_depend AS d
                         JOIN pg_catalog.pg_event_trigger AS e ON e.oid = d.objid
                        WHERE d.classid = 'pg_event_trigger'::regclass AND e.evtname = v_trigger.name
                          AND d.deptype = 'e') THEN
            EXECUTE format('ALTER EXTENSION pghistory ADD EVENT TRIGGER %I', v_trigger.name);
        END IF;
        v_count := v_count + 1;
    END LOOP;
    RETURN v_count;
END
$$;
COMMENT ON FUNCTION pghistory.install_event_triggers() IS
    'pghistory: create the event triggers that follow ALTER TABLE and DROP of tracked tables (superusers only). '
    'Returns how many it created';

-- The installing role gets the event triggers if it may create them;
-- without them, tracking does not follow ALTER TABLE by itself (see
-- pghistory.refresh()). A WARNING, since CREATE EXTENSION does not show
-- notices of its script.
DO $$
BEGIN
    PERFORM pghistory.install_event_triggers();
EXCEPTION WHEN insufficient_privilege THEN
    RAISE WARNING 'pghistory: installed without the event triggers that follow ALTER TABLE (% may not create them)', current_user
        USING HINT = 'After altering a tracked table, run SELECT pghistory.refresh(''<table>''); '
                     'or ask a superuser to run SELECT pghistory.install_event_triggers().';
END
$$;
