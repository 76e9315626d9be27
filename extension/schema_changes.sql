
-- ---------------------------------------------------------------------------
-- schema_changes.sql: keeping tracking correct through ALTER TABLE and DROP
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
--   partitions        new and attached partitions get the triggers;
--   DROP TABLE        the history stays, the registry row goes.
-- Only a superuser may create event triggers. CREATE EXTENSION run by
-- anyone else leaves them out; then pghistory.refresh(table) brings a
-- table in step after ALTER TABLE, and a superuser can add the event
-- triggers later with pghistory.install_event_triggers().
-- ---------------------------------------------------------------------------

-- What the trigger functions of each tracked table depend on: its name,
-- its event table's name, its columns (by attnum: name, type, typmod,
-- collation), its primary key column and its partitions; and the event
-- table's column names (event_columns, to check, not to follow). One
-- jsonb object keyed by the tracked table's oid; p_tables limits it to
-- some tables.
CREATE FUNCTION pghistory._schema_snapshot(p_tables regclass[] DEFAULT NULL)
RETURNS jsonb
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce(jsonb_object_agg(c.oid::text, jsonb_build_object(
               'table', format('%I.%I', n.nspname, c.relname),
               'event_table', (SELECT format('%I.%I', en.nspname, ec.relname)
                                 FROM pg_catalog.pg_class AS ec
                                 JOIN pg_catalog.pg_namespace AS en ON en.oid = ec.relnamespace
                                WHERE ec.oid = t.event_table),
               'columns', (SELECT jsonb_object_agg(a.attnum::text, jsonb_build_array(
                                      a.attname, a.atttypid, a.atttypmod, a.attcollation))
                             FROM pg_catalog.pg_attribute AS a
                            WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped),
               'key', (SELECT k.column_name FROM pghistory._primary_key(c.oid) AS k),
               'tree', (SELECT jsonb_agg(r.relid::oid ORDER BY r.relid::oid)
                          FROM pghistory._table_tree(c.oid) AS r),
               'event_columns', (SELECT jsonb_agg(e.attname ORDER BY e.attnum)
                                   FROM pg_catalog.pg_attribute AS e
                                  WHERE e.attrelid = t.event_table AND e.attnum > 0 AND NOT e.attisdropped))), '{}')
      FROM pghistory.tracked AS t
      JOIN pg_catalog.pg_class AS c ON c.oid = t.tracked_table
      JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
     WHERE p_tables IS NULL OR t.tracked_table = ANY (p_tables)
$$;

-- Whether an event trigger of pghistory is at work in this transaction:
-- the DDL it runs itself (on event tables, trigger functions) is not
-- followed again.
CREATE FUNCTION pghistory._following_schema()
RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce(current_setting('pghistory._following_schema', true), '') = 'on'
$$;

-- A tracker condition with references to a renamed column (OLD.name,
-- NEW."Name") pointed at its new name. Anything else is left alone; the
-- result is checked by compiling it, so a reference this misses is
-- reported rather than silently broken.
CREATE FUNCTION pghistory._rename_in_condition(p_condition text, p_old name, p_new name)
RETURNS text
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_result text := p_condition;
    v_new text := replace(quote_ident(p_new), '\', '\\');
BEGIN
    IF v_result IS NULL THEN
        RETURN NULL;
    END IF;
    -- quoted: OLD."Old Name" (case-sensitive name, case-insensitive OLD/NEW)
    v_result := regexp_replace(v_result,
        '(\m(?:[Oo][Ll][Dd]|[Nn][Ee][Ww])\s*\.\s*)'
        || regexp_replace('"' || replace(p_old, '"', '""') || '"', '([\\^$.|?*+()\[\]{}])', '\\\1', 'g'),
        '\1' || v_new, 'g');
    -- unquoted: old.status, OLD.Status (folded to lower case)
    IF p_old ~ '^[a-z_][a-z0-9_$]*$' THEN
        v_result := regexp_replace(v_result,
            '(\m(?:old|new)\s*\.\s*)' || replace(p_old, '$', '\$') || '(?![a-z0-9_$])',
            '\1' || v_new, 'gi');
    END IF;
    RETURN v_result;
END
$$;

-- Converts an event table column to the type of the tracked column it
-- records: first as PostgreSQL assigns (refusing values that do not fit,
-- never truncating), and only when no assignment cast exists with an
-- explicit cast (USING col::type). Refuses, with what to do, when the
-- history does not convert.
CREATE FUNCTION pghistory._convert_event_column(p_event_table regclass, p_column name,
                                                p_type text, p_collation text, p_tracked regclass)
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_old_type text := (SELECT format_type(a.atttypid, a.atttypmod) FROM pg_catalog.pg_attribute AS a
                         WHERE a.attrelid = p_event_table AND a.attname = p_column);
    v_message text;
BEGIN
    BEGIN
        BEGIN
            EXECUTE format('ALTER TABLE %s ALTER COLUMN %I TYPE %s%s', p_event_table, p_column, p_type, p_collation);
        EXCEPTION WHEN datatype_mismatch THEN
            EXECUTE format('ALTER TABLE %s ALTER COLUMN %I TYPE %s%s USING %I::%s', p_event_table, p_column,
                           p_type, p_collation, p_column, p_type);
        END;
    EXCEPTION WHEN OTHERS THEN
        GET STACKED DIAGNOSTICS v_message = MESSAGE_TEXT;
        RAISE EXCEPTION 'pghistory: the history of %.% cannot be converted from % to %',
                pghistory._qualified_name(p_tracked), quote_ident(p_column), v_old_type, p_type
            USING ERRCODE = 'datatype_mismatch',
                  DETAIL = format('Converting column %I of the event table %s failed: %s',
                                  p_column, p_event_table, v_message),
                  HINT = format('Convert the history first, the way you want it converted: '
                                'ALTER TABLE %s ALTER COLUMN %I TYPE %s USING <expression>; '
                                'then run this ALTER TABLE again.', p_event_table, p_column, p_type);
    END;
END
$$;

-- Brings one tracked table's registry row, event table and trigger
-- functions in step with the table as it is now. p_before is the table's
-- entry of _schema_snapshot() taken before the change (NULL when unknown:
-- then a renamed column looks like a dropped one plus a new one);
-- p_partitions_changed says partitions came or went.
-- Refuses, so that the ALTER TABLE rolls back, changes that would leave
-- the table half-tracked: a rename onto a name the event table already
-- uses, dropping the last column of `fields` or of a tracker's `changed`,
-- a condition that no longer compiles, history that does not convert.
CREATE FUNCTION pghistory._follow_schema_change(p_tracked regclass, p_before jsonb,
                                                p_partitions_changed boolean DEFAULT false)
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_config pghistory.tracked;
    v_original pghistory.tracked;
    v_rename record;
    v_tracker pghistory.tracker;
    v_trackers pghistory.tracker[] := '{}';
    v_column record;
    v_key record;
    v_message text;
    v_signature text;     -- what the trigger functions say they were generated from
    v_table text := pghistory._qualified_name(p_tracked);
BEGIN
    SELECT * INTO v_config FROM pghistory.tracked AS t WHERE t.tracked_table = p_tracked;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    v_original := v_config;

    -- Following a change means altering the event table and replacing the
    -- trigger functions, as their owner: say so when that is someone else
    -- (typically: a superuser tracked a table another role owns and alters).
    SELECT string_agg(DISTINCT quote_ident(pg_get_userbyid(o.owner)), ', ') INTO v_message
      FROM (SELECT c.relowner AS owner FROM pg_catalog.pg_class AS c WHERE c.oid = v_config.event_table
            UNION
            SELECT p.proowner FROM pghistory._table_tree(p_tracked) AS t
              JOIN pg_catalog.pg_trigger AS g ON g.tgrelid = t.relid
              JOIN pg_catalog.pg_proc AS p ON p.oid = g.tgfoid
             WHERE p.pronamespace = 'pghistory'::regnamespace
               AND p.proname <> '_refuse_history_change') AS o
     WHERE NOT pg_has_role(current_user, o.owner, 'USAGE');
    IF v_message IS NOT NULL THEN
        RAISE EXCEPTION 'pghistory: % cannot follow this change of %, whose history and trigger functions belong to %',
                quote_ident(current_user), v_table, v_message
            USING ERRCODE = 'insufficient_privilege',
                  HINT = format('Alter the table as a role that is a member of %s (or as a superuser), '
                                'or have it track the table afresh so that its history belongs to the table''s owner.',
                                v_message);
    END IF;

    -- renamed columns: the same attnum under another name
    FOR v_rename IN
        SELECT b.value ->> 0 AS old_name, a.attname AS new_name
          FROM jsonb_each(p_before -> 'columns') AS b
          JOIN pg_catalog.pg_attribute AS a
            ON a.attrelid = p_tracked AND a.attnum = b.key::int2 AND NOT a.attisdropped
         WHERE a.attname <> b.value ->> 0
    LOOP
        IF EXISTS (SELECT FROM pg_catalog.pg_attribute AS e
                    WHERE e.attrelid = v_config.event_table AND e.attname = v_rename.old_name
                      AND e.attnum > 0 AND NOT e.attisdropped) THEN
            IF EXISTS (SELECT FROM pg_catalog.pg_attribute AS e
                        WHERE e.attrelid = v_config.event_table AND e.attname = v_rename.new_name
                          AND e.attnum > 0 AND NOT e.attisdropped) THEN
                RAISE EXCEPTION 'pghistory: cannot rename column % of % to %: its event table % already has a column %',
                        quote_ident(v_rename.old_name), v_table, quote_ident(v_rename.new_name),
                        v_config.event_table, quote_ident(v_rename.new_name)
                    USING ERRCODE = 'duplicate_column',
                          DETAIL = 'That column holds the history of an earlier column of the same name.',
                          HINT = format('Rename the old history first: ALTER TABLE %s RENAME COLUMN %I TO <another name>.',
                                        v_config.event_table, v_rename.new_name);
            END IF;
            EXECUTE format('ALTER TABLE %s RENAME COLUMN %I TO %I', v_config.event_table,
                           v_rename.old_name, v_rename.new_name);
        END IF;
        v_config.fields := array_replace(v_config.fields, v_rename.old_name, v_rename.new_name::text);
        v_config.exclude := array_replace(v_config.exclude, v_rename.old_name, v_rename.new_name::text);
        v_trackers := '{}';
        FOREACH v_tracker IN ARRAY v_config.trackers LOOP
            v_tracker.changed := array_replace(v_tracker.changed, v_rename.old_name, v_rename.new_name::text);
            v_tracker.condition := pghistory._rename_in_condition(v_tracker.condition, v_rename.old_name,
                                                                  v_rename.new_name);
            v_trackers := v_trackers || v_tracker;
        END LOOP;
        v_config.trackers := v_trackers;
    END LOOP;

    -- dropped columns: names the configuration gives that the table no longer has
    IF v_config.fields IS NOT NULL THEN
        v_config.fields := ARRAY(SELECT f FROM unnest(v_config.fields) AS f
                                  WHERE EXISTS (SELECT FROM pg_catalog.pg_attribute AS a
                                                 WHERE a.attrelid = p_tracked AND a.attname = f
                                                   AND a.attnum > 0 AND NOT a.attisdropped));
        IF v_config.fields = '{}' THEN
            RAISE EXCEPTION 'pghistory: this change leaves no column to track in % (fields => %)',
                    v_table, quote_literal(v_original.fields::text)
                USING ERRCODE = 'dependent_objects_still_exist',
                      HINT = format('Untrack the table first (SELECT pghistory.untrack(%L)), '
                                    'or track() it with other fields.', v_table);
        END IF;
    END IF;
    v_config.exclude := nullif(ARRAY(SELECT x FROM unnest(v_config.exclude) AS x
                                      WHERE EXISTS (SELECT FROM pg_catalog.pg_attribute AS a
                                                     WHERE a.attrelid = p_tracked AND a.attname = x
                                                       AND a.attnum > 0 AND NOT a.attisdropped)), '{}');
    v_trackers := '{}';
    FOREACH v_tracker IN ARRAY v_config.trackers LOOP
        IF v_tracker.changed IS NOT NULL THEN
            v_tracker.changed := ARRAY(SELECT c FROM unnest(v_tracker.changed) AS c
                                        WHERE EXISTS (SELECT FROM pg_catalog.pg_attribute AS a
                                                       WHERE a.attrelid = p_tracked AND a.attname = c
                                                         AND a.attnum > 0 AND NOT a.attisdropped));
            IF v_tracker.changed = '{}' THEN
                RAISE EXCEPTION 'pghistory: tracker "%" of % fires when % changes, and this change drops it',
                        v_tracker.label, v_table,
                        array_to_string(ARRAY(SELECT quote_ident(c) FROM unnest(
                            (SELECT t.changed FROM unnest(v_original.trackers) AS t
                              WHERE t.label = v_tracker.label)) AS c), ', ')
                    USING ERRCODE = 'dependent_objects_still_exist',
                          HINT = 'Reconfigure the tracker first with pghistory.track(... trackers => ...), '
                                 'watching other columns (or changed => NULL), then alter the table.';
            END IF;
        END IF;
        v_trackers := v_trackers || v_tracker;
    END LOOP;
    v_config.trackers := v_trackers;

    -- the configuration must still hold: columns to track, conditions that compile
    PERFORM pghistory._tracked_columns(p_tracked, v_config.fields, v_config.exclude);
    BEGIN
        PERFORM pghistory._check_trackers(p_tracked, v_config.trackers);
    EXCEPTION WHEN invalid_parameter_value THEN
        GET STACKED DIAGNOSTICS v_message = MESSAGE_TEXT;
        RAISE EXCEPTION '%', v_message
            USING ERRCODE = 'dependent_objects_still_exist',
                  DETAIL = format('The condition is part of how %s is tracked, and this change breaks it.', v_table),
                  HINT = 'Change the tracker first with pghistory.track(... trackers => ...), then alter the table.';
    END;

    IF v_config IS DISTINCT FROM v_original THEN
        UPDATE pghistory.tracked AS t
           SET fields = v_config.fields, exclude = v_config.exclude, trackers = v_config.trackers
         WHERE t.tracked_table = p_tracked;
    END IF;

    -- the event table: new columns added, changed types converted
    PERFORM pghistory._add_event_columns(v_config);
    FOR v_column IN
        SELECT c.column_name, c.column_type,
               CASE WHEN a.attcollation <> e.attcollation AND a.attcollation <> 0
                    THEN format(' COLLATE %I.%I', cn.nspname, co.collname) ELSE '' END AS collation
          FROM pghistory._tracked_columns(p_tracked, v_config.fields, v_config.exclude) AS c
          JOIN pg_catalog.pg_attribute AS a ON a.attrelid = p_tracked AND a.attname = c.column_name
          JOIN pg_catalog.pg_attribute AS e ON e.attrelid = v_config.event_table AND e.attname = c.column_name
                                           AND e.attnum > 0 AND NOT e.attisdropped
          LEFT JOIN pg_catalog.pg_collation AS co ON co.oid = a.attcollation
          LEFT JOIN pg_catalog.pg_namespace AS cn ON cn.oid = co.collnamespace
         WHERE (a.atttypid, a.atttypmod) IS DISTINCT FROM (e.atttypid, e.atttypmod)
            OR (a.attcollation <> e.attcollation AND a.attcollation <> 0)
         ORDER BY a.attnum
    LOOP
        PERFORM pghistory._convert_event_column(v_config.event_table, v_column.column_name,
                                                v_column.column_type, v_column.collation, p_tracked);
    END LOOP;
    -- pgh_obj_id follows the type of the primary key
    SELECT k.column_name, k.column_type INTO v_key FROM pghistory._primary_key(p_tracked) AS k;
    IF FOUND AND v_key.column_type IS DISTINCT FROM (
            SELECT format_type(e.atttypid, e.atttypmod) FROM pg_catalog.pg_attribute AS e
             WHERE e.attrelid = v_config.event_table AND e.attname = 'pgh_obj_id' AND NOT e.attisdropped) THEN
        PERFORM pghistory._convert_event_column(v_config.event_table, 'pgh_obj_id', v_key.column_type, '',
                                                p_tracked);
    END IF;

    -- Partitions that left the tree keep no trigger of the table.
    PERFORM pghistory._drop_detached_triggers(p_tracked);
    -- The trigger functions and triggers, regenerated when what they were
    -- generated from changed (their comment says, see
    -- _generation_signature()) and the table has its triggers. Not when
    -- they are missing: pg_restore adds primary keys after restoring the
    -- registry, while (in parallel) it restores the triggers, each the way
    -- it was. And when partitions came or went, if the trigger functions
    -- are there, triggers or not: a partitioned table tracked for TRUNCATE
    -- alone has no trigger until it has a partition (pg_restore makes
    -- partitions before it fills the registry, so never gets here then).
    v_signature := (SELECT obj_description(f, 'pg_proc')
                      FROM pghistory._tracker_functions(p_tracked) AS f LIMIT 1);
    IF (p_partitions_changed AND v_signature IS NOT NULL)
       OR (pghistory._generation_signature(p_tracked) IS DISTINCT FROM v_signature
           AND EXISTS (SELECT FROM pghistory._table_tree(p_tracked) AS t
                         JOIN pg_catalog.pg_trigger AS g ON g.tgrelid = t.relid
                         JOIN pg_catalog.pg_proc AS p ON p.oid = g.tgfoid
                        WHERE p.pronamespace = 'pghistory'::regnamespace
                          AND p.proname <> '_refuse_history_change')) THEN
        PERFORM pghistory._generate_triggers(p_tracked);
    END IF;
END
$$;

-- Drops the triggers a tracked table's trigger functions still have on
-- tables that are no longer its partitions (after DETACH PARTITION).
CREATE FUNCTION pghistory._drop_detached_triggers(p_tracked regclass)
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_trigger record;
BEGIN
    FOR v_trigger IN
        SELECT g.tgname, g.tgrelid::regclass AS relation
          FROM pg_catalog.pg_trigger AS g
         WHERE g.tgfoid IN (
                   -- the functions of the triggers on the table and its partitions
                   SELECT r.tgfoid FROM pghistory._table_tree(p_tracked) AS t
                     JOIN pg_catalog.pg_trigger AS r ON r.tgrelid = t.relid
                     JOIN pg_catalog.pg_proc AS p ON p.oid = r.tgfoid
                    WHERE p.pronamespace = 'pghistory'::regnamespace AND p.proname <> '_refuse_history_change'
                   UNION
                   -- and those named after its trackers (truncate may have no other trigger left)
                   SELECT p.oid FROM pghistory.tracked AS c
                    CROSS JOIN LATERAL unnest(c.trackers) AS k
                     JOIN pg_catalog.pg_proc AS p
                       ON p.pronamespace = 'pghistory'::regnamespace
                      AND p.proname = pghistory._trigger_function_name(p_tracked, k.label)
                    WHERE c.tracked_table = p_tracked)
           AND NOT g.tgisinternal AND g.tgparentid = 0
           AND g.tgrelid NOT IN (SELECT t.relid FROM pghistory._table_tree(p_tracked) AS t)
    LOOP
        EXECUTE format('DROP TRIGGER %I ON %s', v_trigger.tgname, v_trigger.relation);
    END LOOP;
END
$$;

-- Forgets tracked tables that were dropped: their registry rows, and the
-- trigger functions named after them that no trigger uses any more. The
-- event tables (the history) stay. Only touches rows whose table no
-- longer exists, so it is safe to let anyone run it; SECURITY DEFINER
-- because the registry's row-level security cannot tell who owned a table
-- that is gone. Returns how many tables were forgotten.
CREATE FUNCTION pghistory._forget_dropped_tables(p_tables oid[], p_names text[])
RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_row record;
    v_function regprocedure;
    v_count integer := 0;
BEGIN
    FOR v_row IN
        DELETE FROM pghistory.tracked AS t
         USING unnest(p_tables, p_names) AS d(relid, name)
         WHERE t.tracked_table::oid = d.relid
           AND NOT EXISTS (SELECT FROM pg_catalog.pg_class AS c WHERE c.oid = d.relid)
        RETURNING d.name, t.trackers
    LOOP
        v_count := v_count + 1;
        FOR v_function IN
            SELECT p.oid::regprocedure
              FROM unnest(v_row.trackers) AS k
              JOIN pg_catalog.pg_proc AS p
                ON p.pronamespace = 'pghistory'::regnamespace
               AND p.proname = pghistory._fit_identifier(v_row.name || '/' || k.label)
               AND p.pronargs = 0 AND p.prorettype = 'trigger'::regtype
             WHERE NOT EXISTS (SELECT FROM pg_catalog.pg_trigger AS g WHERE g.tgfoid = p.oid)
               AND NOT EXISTS (SELECT FROM pg_catalog.pg_depend AS d
                                WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e')
        LOOP
            EXECUTE format('DROP FUNCTION %s', v_function);
        END LOOP;
    END LOOP;
    RETURN v_count;
END
$$;

-- Refuses an event table that lost a column (of p_had, the columns it had
-- before the command) its tracked table's events are written to: renamed
-- or dropped by ALTER TABLE on the event table.
CREATE FUNCTION pghistory._check_event_table(p_config pghistory.tracked, p_had text[])
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_missing text;
BEGIN
    SELECT string_agg(quote_ident(c.name), ', ' ORDER BY c.ord) INTO v_missing
      FROM unnest(ARRAY['pgh_id', 'pgh_created_at', 'pgh_label', 'pgh_obj_id']
                  || CASE WHEN p_config.context IN ('fk', 'json') THEN ARRAY['pgh_context_id'] ELSE '{}' END
                  || CASE WHEN p_config.context = 'json' THEN ARRAY['pgh_context'] ELSE '{}' END
                  || ARRAY(SELECT t.column_name::text FROM pghistory._tracked_columns(
                               p_config.tracked_table, p_config.fields, p_config.exclude) AS t))
           WITH ORDINALITY AS c(name, ord)
     WHERE c.name = ANY (p_had)
       AND NOT EXISTS (SELECT FROM pg_catalog.pg_attribute AS a
                        WHERE a.attrelid = p_config.event_table AND a.attname = c.name
                          AND a.attnum > 0 AND NOT a.attisdropped);
    IF v_missing IS NOT NULL THEN
        RAISE EXCEPTION 'pghistory: % is the event table of %, whose events need its column %',
                pghistory._qualified_name(p_config.event_table), pghistory._qualified_name(p_config.tracked_table),
                v_missing
            USING ERRCODE = 'dependent_objects_still_exist',
                  HINT = 'Columns that receive history cannot be renamed or dropped while the table is tracked: '
                         'stop tracking the column first (track() with fields or exclude), or untrack the table.';
    END IF;
END
$$;

-- ddl_command_start of ALTER TABLE and ALTER SCHEMA: remember what the
-- tracked tables look like, for pghistory._after_ddl() to compare.
CREATE FUNCTION pghistory._before_ddl()
RETURNS event_trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF pghistory._following_schema() THEN
        RETURN;
    END IF;
    PERFORM set_config('pghistory._schema_before', pghistory._schema_snapshot()::text, true);
END
$$;

-- ddl_command_end of ALTER TABLE, CREATE TABLE and ALTER SCHEMA: follows
-- the changes of the tracked tables that the command changed (their
-- columns, names, primary keys or partitions).
CREATE FUNCTION pghistory._after_ddl()
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
    IF pghistory._following_schema() THEN
        RETURN;
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
    PERFORM set_config('pghistory._following_schema', 'on', true);
    FOREACH v_table IN ARRAY v_changed LOOP
        PERFORM pghistory._follow_schema_change(v_table, v_before -> v_table::oid::text,
                    TG_TAG = 'CREATE TABLE'
                    OR v_before -> v_table::oid::text -> 'tree' IS DISTINCT FROM v_after -> v_table::oid::text -> 'tree');
    END LOOP;
    IF v_before IS NOT NULL THEN  -- the next command of the statement compares with what is now
        PERFORM set_config('pghistory._schema_before',
                           (v_before || pghistory._schema_snapshot(v_changed))::text, true);
    END IF;
    PERFORM set_config('pghistory._following_schema', '', true);
END
$$;

-- sql_drop: a dropped tracked table is forgotten (its history stays); an
-- event table cannot be dropped while its table is tracked; columns of
-- tracked tables dropped by DROP ... CASCADE (of a type, say) are followed
-- like ALTER TABLE ... DROP COLUMN.
CREATE FUNCTION pghistory._on_drop()
RETURNS event_trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_dropped oid[];
    v_names text[];
    v_history record;
    v_table regclass;
    v_tables regclass[];
BEGIN
    IF pghistory._following_schema() THEN
        RETURN;
    END IF;

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

    PERFORM set_config('pghistory._following_schema', 'on', true);
    SELECT array_agg(d.objid), array_agg(d.address_names[1] || '.' || d.address_names[2])
      INTO v_dropped, v_names
      FROM pg_event_trigger_dropped_objects() AS d
     WHERE d.classid = 'pg_class'::regclass AND d.objsubid = 0
       AND d.objid IN (SELECT t.tracked_table::oid FROM pghistory.tracked AS t);
    IF v_dropped IS NOT NULL THEN
        PERFORM pghistory._forget_dropped_tables(v_dropped, v_names);
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

    PERFORM set_config('pghistory._following_schema', '', true);
END
$$;

-- Brings a tracked table in step with its columns after ALTER TABLE, what
-- the event triggers do by themselves when they are installed (see
-- pghistory.install_event_triggers()). Adds new columns to the event
-- table, converts changed types, forgets dropped columns and regenerates
-- the trigger functions. It cannot tell a renamed column from a dropped
-- one and a new one: the old name keeps the history, the new name starts
-- a column of its own. Refuses untracked tables and non-owners.
CREATE FUNCTION pghistory.refresh(tbl regclass)
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT EXISTS (SELECT FROM pghistory.tracked AS t WHERE t.tracked_table = refresh.tbl) THEN
        RAISE EXCEPTION 'pghistory: % is not tracked', refresh.tbl
            USING ERRCODE = 'undefined_object',
                  HINT = 'SELECT * FROM pghistory.tracking lists the tracked tables.';
    END IF;
    IF NOT pghistory._owns(refresh.tbl) THEN
        RAISE EXCEPTION 'pghistory: only the owner of % can refresh its tracking', refresh.tbl
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'Run refresh() as the owner of the table or as a member of that role.';
    END IF;
    EXECUTE format('LOCK TABLE %s IN SHARE ROW EXCLUSIVE MODE', refresh.tbl);
    PERFORM set_config('pghistory._following_schema', 'on', true);
    PERFORM pghistory._follow_schema_change(refresh.tbl, NULL, true);
    PERFORM set_config('pghistory._following_schema', '', true);
END
$$;

-- Creates the event triggers that follow schema changes (those missing),
-- as members of the extension so that pg_dump leaves them to CREATE
-- EXTENSION. CREATE EXTENSION calls it when run by a superuser; a
-- superuser can call it later for an extension a non-superuser created.
-- Refuses other roles: only superusers may create event triggers.
-- Returns how many event triggers it created.
CREATE FUNCTION pghistory.install_event_triggers()
RETURNS integer
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_trigger record;
    v_count integer := 0;
BEGIN
    IF NOT (SELECT r.rolsuper FROM pg_catalog.pg_roles AS r WHERE r.rolname = current_user) THEN
        RAISE EXCEPTION 'pghistory: only a superuser can create the event triggers that follow schema changes'
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'Ask a superuser to run SELECT pghistory.install_event_triggers(). Until then, '
                         'run SELECT pghistory.refresh(''<table>'') after altering a tracked table.';
    END IF;
    FOR v_trigger IN
        SELECT * FROM (VALUES
            ('pghistory_before_ddl', 'ddl_command_start', '''ALTER TABLE'', ''ALTER SCHEMA''', '_before_ddl'),
            ('pghistory_after_ddl', 'ddl_command_end', '''ALTER TABLE'', ''CREATE TABLE'', ''ALTER SCHEMA''', '_after_ddl'),
            ('pghistory_on_drop', 'sql_drop', NULL, '_on_drop')) AS t(name, event, tags, function)
         WHERE NOT EXISTS (SELECT FROM pg_catalog.pg_event_trigger AS e WHERE e.evtname = t.name)
    LOOP
        EXECUTE format('CREATE EVENT TRIGGER %I ON %s%s EXECUTE FUNCTION pghistory.%I()',
                       v_trigger.name, v_trigger.event,
                       CASE WHEN v_trigger.tags IS NOT NULL THEN ' WHEN TAG IN (' || v_trigger.tags || ')' ELSE '' END,
                       v_trigger.function);
        -- inside CREATE EXTENSION it is a member already
        IF NOT EXISTS (SELECT FROM pg_catalog.pg_depend AS d
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

-- Only superusers may create event triggers: without them, tracking does
-- not follow ALTER TABLE by itself (see pghistory.refresh()). A WARNING,
-- since CREATE EXTENSION does not show notices of its script.
DO $$
BEGIN
    IF (SELECT r.rolsuper FROM pg_catalog.pg_roles AS r WHERE r.rolname = current_user) THEN
        PERFORM pghistory.install_event_triggers();
    ELSE
        RAISE WARNING 'pghistory: installed without the event triggers that follow ALTER TABLE (only a superuser can create them)'
            USING HINT = 'After altering a tracked table, run SELECT pghistory.refresh(''<table>''); '
                         'or ask a superuser to run SELECT pghistory.install_event_triggers().';
    END IF;
END
$$;
