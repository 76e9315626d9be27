
-- ---------------------------------------------------------------------------
-- follow_schema.sql: bringing a tracked table's registry row, event table and
-- trigger functions in step after its schema changed
-- ---------------------------------------------------------------------------

-- Refuses to follow a change of p_tracked when its event table or trigger
-- functions belong to a role the current user is not a member of: following
-- means altering and replacing them, as their owner.
CREATE OR REPLACE FUNCTION pghistory._check_follow_rights(p_tracked regclass, p_event_table regclass)
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_message text;
    v_table text := pghistory._qualified_name(p_tracked);
BEGIN
    -- typically: a superuser tracked a table another role owns and alters
    SELECT string_agg(DISTINCT quote_ident(pg_get_userbyid(o.owner)), ', ') INTO v_message
      FROM (SELECT c.relowner AS owner FROM pg_catalog.pg_class AS c WHERE c.oid = p_event_table
            UNION
            SELECT p.proowner FROM pghistory._tracker_functions(p_tracked) AS f
              JOIN pg_catalog.pg_proc AS p ON p.oid = f) AS o
     WHERE NOT pg_has_role(current_user, o.owner, 'USAGE');
    IF v_message IS NOT NULL THEN
        RAISE EXCEPTION 'pghistory: % cannot follow this change of %, whose history and trigger functions belong to %',
                quote_ident(current_user), v_table, v_message
            USING ERRCODE = 'insufficient_privilege',
                  HINT = format('Alter the table as a role that is a member of %s (or as a superuser), '
                                'or have it track the table afresh so that its history belongs to the table''s owner.',
                                v_message);
    END IF;
END
$$;

-- The registry row p_config with the columns renamed since p_before (the
-- table's _schema_snapshot() entry) renamed in fields, exclude and the
-- trackers; the event table's columns of the old names are renamed along.
-- Refuses a rename onto a name the event table already uses.
CREATE OR REPLACE FUNCTION pghistory._follow_renames(p_tracked regclass, p_before jsonb, p_config pghistory.tracked)
RETURNS pghistory.tracked
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_config pghistory.tracked := p_config;
    v_rename record;
    v_tracker pghistory.tracker;
    v_trackers pghistory.tracker[];
    v_table text := pghistory._qualified_name(p_tracked);
BEGIN
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
        v_trackers := '{}'::pghistory.tracker[];
        FOREACH v_tracker IN ARRAY v_config.trackers LOOP
            v_tracker.changed := array_replace(v_tracker.changed, v_rename.old_name, v_rename.new_name::text);
            v_tracker.condition := pghistory._rename_in_condition(v_tracker.condition, v_rename.old_name,
                                                                  v_rename.new_name);
            v_trackers := v_trackers || v_tracker;
        END LOOP;
        v_config.trackers := v_trackers;
    END LOOP;
    RETURN v_config;
END
$$;

-- The registry row p_config without the columns the table no longer has
-- (in fields, exclude and the trackers' changed). Refuses a change that
-- drops the last column of fields or of a tracker's changed.
CREATE OR REPLACE FUNCTION pghistory._forget_dropped_columns(p_tracked regclass, p_config pghistory.tracked)
RETURNS pghistory.tracked
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_config pghistory.tracked := p_config;
    v_original pghistory.tracked := p_config;
    v_tracker pghistory.tracker;
    v_trackers pghistory.tracker[];
    v_table text := pghistory._qualified_name(p_tracked);
BEGIN
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
    v_trackers := '{}'::pghistory.tracker[];
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
    RETURN v_config;
END
$$;

-- Regenerates the trigger functions of p_tracked when they are stale (see
-- below); drops the triggers left on partitions that were detached.
CREATE OR REPLACE FUNCTION pghistory._regenerate_stale_triggers(p_tracked regclass, p_partitions_changed boolean)
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_signature text;     -- what the trigger functions say they were generated from
BEGIN
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
                        WHERE g.tgfoid IN (SELECT f FROM pghistory._tracker_functions(p_tracked) AS f))) THEN
        PERFORM pghistory._generate_triggers(p_tracked);
    END IF;
END
$$;

-- After ALTER TABLE ... OWNER TO of a tracked table: its event table (with
-- its partitions) and trigger functions follow it to the new owner, so that
-- what they run runs with that owner's rights, never with those of the role
-- the table was taken from. The functions are regenerated, not only given
-- away: whether one writes context rows itself or through
-- _attach_context() depends on its owner's rights. Refuses, so that the
-- ALTER TABLE rolls back, a new owner that may not own functions in schema
-- pghistory (PostgreSQL would refuse ALTER FUNCTION ... OWNER TO it with a
-- bare "permission denied for schema"). Does nothing when they already
-- belong to the table's owner.
CREATE OR REPLACE FUNCTION pghistory._follow_owner(p_tracked regclass, p_event_table regclass)
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_owner oid := (SELECT c.relowner FROM pg_catalog.pg_class AS c WHERE c.oid = p_tracked);
    v_tables regclass[] := ARRAY(SELECT t.relid FROM pghistory._table_tree(p_event_table) AS t
                                   JOIN pg_catalog.pg_class AS c ON c.oid = t.relid
                                  WHERE c.relowner <> v_owner);
    v_functions_given boolean := EXISTS (SELECT FROM pghistory._tracker_functions(p_tracked) AS f
                                           JOIN pg_catalog.pg_proc AS p ON p.oid = f
                                          WHERE p.proowner <> v_owner);
    v_table regclass;
BEGIN
    IF cardinality(v_tables) = 0 AND NOT v_functions_given THEN
        RETURN;
    END IF;
    IF NOT (pghistory._is_superuser() OR has_schema_privilege(v_owner, 'pghistory', 'CREATE')) THEN
        RAISE EXCEPTION 'pghistory: % may not own the trigger functions of %, which live in schema pghistory',
                quote_ident(pg_get_userbyid(v_owner)), pghistory._qualified_name(p_tracked)
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = 'The trigger functions and the history of a tracked table belong to the table''s owner.',
                  HINT = format('A superuser or the extension''s owner can GRANT CREATE ON SCHEMA pghistory TO %I '
                                'first; or a superuser can give the table away.', pg_get_userbyid(v_owner));
    END IF;
    FOREACH v_table IN ARRAY v_tables LOOP
        EXECUTE format('ALTER TABLE %s OWNER TO %I', v_table, pg_get_userbyid(v_owner));
    END LOOP;
    IF v_functions_given THEN
        PERFORM pghistory._generate_triggers(p_tracked);
    END IF;
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
CREATE OR REPLACE FUNCTION pghistory._follow_schema_change(p_tracked regclass, p_before jsonb,
                                                p_partitions_changed boolean DEFAULT false)
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_config pghistory.tracked;
    v_original pghistory.tracked;
    v_message text;
    v_table text := pghistory._qualified_name(p_tracked);
BEGIN
    SELECT * INTO v_config FROM pghistory.tracked AS t WHERE t.tracked_table = p_tracked;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    v_original := v_config;
    PERFORM pghistory._check_follow_rights(p_tracked, v_config.event_table);
    v_config := pghistory._follow_renames(p_tracked, p_before, v_config);
    v_config := pghistory._forget_dropped_columns(p_tracked, v_config);

    -- the configuration must still hold: columns to track, conditions that compile
    PERFORM pghistory._check_tracked_columns(p_tracked, v_config.fields, v_config.exclude);
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
        PERFORM pghistory._register(v_config);
    END IF;

    PERFORM pghistory._follow_column_types(p_tracked, v_config);
    PERFORM pghistory._follow_owner(p_tracked, v_config.event_table);
    PERFORM pghistory._regenerate_stale_triggers(p_tracked, p_partitions_changed);
END
$$;

-- Drops the triggers a tracked table's trigger functions still have on
-- tables that are no longer its partitions (after DETACH PARTITION).
CREATE OR REPLACE FUNCTION pghistory._drop_detached_triggers(p_tracked regclass)
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
         WHERE g.tgfoid IN (SELECT f FROM pghistory._tracker_functions(p_tracked) AS f)  -- as the registry records them
           AND NOT g.tgisinternal AND g.tgparentid = 0
           AND g.tgrelid NOT IN (SELECT t.relid FROM pghistory._table_tree(p_tracked) AS t)
    LOOP
        EXECUTE format('DROP TRIGGER %I ON %s', v_trigger.tgname, v_trigger.relation);
    END LOOP;
END
$$;

-- Brings a tracked table in step with its columns after ALTER TABLE, what
-- the event triggers do by themselves when they are installed (see
-- pghistory.install_event_triggers()). Adds new columns to the event
-- table, converts changed types, forgets dropped columns and regenerates
-- the trigger functions. It cannot tell a renamed column from a dropped
-- one and a new one: the old name keeps the history, the new name starts
-- a column of its own. Refuses untracked tables and non-owners.
CREATE OR REPLACE FUNCTION pghistory.refresh(tbl regclass)
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
    PERFORM pghistory._follow_schema_change(refresh.tbl, NULL, true);
END
$$;
COMMENT ON FUNCTION pghistory.refresh(regclass) IS
    'pghistory: brings a tracked table''s event table and trigger functions in step with its columns after ALTER TABLE (what the event triggers do when installed)';
