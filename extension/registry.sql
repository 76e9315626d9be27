
-- ---------------------------------------------------------------------------
-- registry.sql: the only writers of the registry pghistory.tracked
--
-- No role but the extension's owner may write the registry (privileges.sql):
-- track(), untrack(), the following of schema changes and the forgetting of
-- dropped tables change it through the SECURITY DEFINER functions here,
-- each of which checks again what it is given. The caller is known to them
-- as session_user (inside SECURITY DEFINER code current_user is the
-- extension's owner): the role that logged in, which must have the rights of
-- the owner of both the tracked table and its event table.
-- ---------------------------------------------------------------------------

-- Registers a table or changes its registry row (all but tracked_at) to
-- p_config. Refuses, before writing, what track() would refuse and a
-- direct write could slip in: a relation that is not a permanent table, an
-- event table that is not a pghistory event table, is a tracked table or
-- belongs to another role than the tracked table, and a session user
-- without the rights of that owner. Of trigger_functions it keeps the
-- names of the functions that exist, in schema pghistory, return trigger
-- and belong to the table's owner. EXECUTE stays with PUBLIC: it changes
-- only what the session user could change through track() anyway.
CREATE OR REPLACE FUNCTION pghistory._register(p_config pghistory.tracked)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_table record;
    v_event record;
BEGIN
    SELECT c.relkind, c.relpersistence, c.relowner INTO v_table
      FROM pg_catalog.pg_class AS c WHERE c.oid = p_config.tracked_table;
    SELECT c.relkind, c.relowner INTO v_event
      FROM pg_catalog.pg_class AS c WHERE c.oid = p_config.event_table;
    IF v_table.relkind IS NULL OR v_table.relkind NOT IN ('r', 'p') OR v_table.relpersistence = 't'
       OR v_event.relkind IS NULL OR v_event.relkind NOT IN ('r', 'p') OR p_config.event_table = p_config.tracked_table
       OR EXISTS (SELECT FROM pghistory.tracked AS t
                   WHERE t.tracked_table = p_config.event_table OR t.event_table = p_config.tracked_table)
       OR (SELECT count(*) FROM pg_catalog.pg_attribute AS a
            WHERE a.attrelid = p_config.event_table AND NOT a.attisdropped
              AND a.attname IN ('pgh_id', 'pgh_created_at', 'pgh_label', 'pgh_obj_id')) < 4 THEN
        RAISE EXCEPTION 'pghistory: % cannot record its history in %',
                coalesce(pghistory._qualified_name(p_config.tracked_table), p_config.tracked_table::text),
                coalesce(pghistory._qualified_name(p_config.event_table), p_config.event_table::text)
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Tables are tracked with pghistory.track(), which creates their event tables.';
    END IF;
    IF v_event.relowner <> v_table.relowner OR NOT pg_has_role(session_user, v_table.relowner, 'USAGE') THEN
        RAISE EXCEPTION 'pghistory: only the owner of % and its event table % can change how it is tracked',
                pghistory._qualified_name(p_config.tracked_table), pghistory._qualified_name(p_config.event_table)
            USING ERRCODE = 'insufficient_privilege',
                  HINT = format('Log in as %I (the owner of %s) or as a member of that role.',
                                pg_get_userbyid(v_table.relowner), pghistory._qualified_name(p_config.tracked_table));
    END IF;
    p_config.trigger_functions := ARRAY(
        SELECT f FROM unnest(p_config.trigger_functions) WITH ORDINALITY AS u(f, n)
         WHERE EXISTS (SELECT FROM pg_catalog.pg_proc AS p
                        WHERE p.pronamespace = 'pghistory'::regnamespace AND p.proname = u.f
                          AND p.pronargs = 0 AND p.prorettype = 'trigger'::regtype
                          AND p.proowner = v_table.relowner)
         ORDER BY u.n);
    INSERT INTO pghistory.tracked AS t VALUES (p_config.*)
    ON CONFLICT (tracked_table) DO UPDATE
       SET event_table = excluded.event_table, trackers = excluded.trackers, fields = excluded.fields,
           exclude = excluded.exclude, context = excluded.context, level = excluded.level,
           append_only = excluded.append_only, trigger_functions = excluded.trigger_functions;
END
$$;

-- Removes the registry row of p_table (untrack()). Refuses a session user
-- without the rights of the table's owner (and of its event table's, while
-- there is one). Returns the event table, NULL when the table was not
-- tracked. EXECUTE stays with PUBLIC: it removes only what the session
-- user could remove through untrack() anyway.
CREATE OR REPLACE FUNCTION pghistory._unregister(p_table regclass)
RETURNS regclass
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_event_table regclass;
BEGIN
    IF EXISTS (SELECT FROM pghistory.tracked AS t
                 JOIN pg_catalog.pg_class AS c ON c.oid IN (t.tracked_table, t.event_table)
                WHERE t.tracked_table = p_table AND NOT pg_has_role(session_user, c.relowner, 'USAGE')) THEN
        RAISE EXCEPTION 'pghistory: only the owner of % and its event table can untrack it', p_table
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'Log in as the owner of the table or as a member of that role.';
    END IF;
    DELETE FROM pghistory.tracked AS t WHERE t.tracked_table = p_table
    RETURNING t.event_table INTO v_event_table;
    RETURN v_event_table;
END
$$;

-- Forgets tracked tables that no longer exist (dropped while tracked):
-- deletes their registry rows and returns the names of their trigger
-- functions, for the caller (_on_drop(), which runs as the role that
-- dropped them) to drop. The event tables (the history) stay. EXECUTE
-- stays with PUBLIC: it touches only rows whose table is gone, takes no
-- argument, and drops nothing itself.
CREATE OR REPLACE FUNCTION pghistory._forget_dropped_tables()
RETURNS SETOF name
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    WITH forgotten AS (
        DELETE FROM pghistory.tracked AS t
         WHERE NOT EXISTS (SELECT FROM pg_catalog.pg_class AS c WHERE c.oid = t.tracked_table)
        RETURNING t.trigger_functions)
    SELECT f FROM forgotten AS g CROSS JOIN unnest(g.trigger_functions) AS f
$$;
