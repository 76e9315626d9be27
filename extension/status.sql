
-- ---------------------------------------------------------------------------
-- status.sql: pghistory.status(), the health report behind `pghistory status`
-- ---------------------------------------------------------------------------

-- Reports, one row per check: the installed version and how it was
-- installed (extension files, pg_tle or plain script); whether the event
-- triggers that follow schema changes are there; and for each tracked table
-- the caller may see, whether its trigger functions are up to date with
-- its columns, its event table exists, and the event table and trigger
-- functions are owned by the table's owner (the security model). A check
-- that fails says in `action` what to run. Refuses nothing; changes
-- nothing. Returns (object, aspect, ok, detail, action).
CREATE OR REPLACE FUNCTION pghistory.status()
RETURNS TABLE (object text, aspect text, ok boolean, detail text, action text)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_version text;
    v_method text;
    v_missing text[];
    v_table record;
    v_names text[];
BEGIN
    SELECT e.extversion INTO v_version FROM pg_catalog.pg_extension AS e WHERE e.extname = 'pghistory';
    IF FOUND THEN
        v_method := CASE WHEN EXISTS (SELECT FROM pg_catalog.pg_available_extensions AS a WHERE a.name = 'pghistory')
                         THEN 'extension' ELSE 'pg_tle' END;
    ELSE
        v_method := 'script';
        v_version := substring(pg_catalog.obj_description('pghistory'::regnamespace, 'pg_namespace')
                               FROM '^pghistory ([^ ]+) \(plain script\)$');
    END IF;
    RETURN QUERY SELECT 'pghistory', 'version', true, format('%s (%s)', v_version, v_method), NULL::text;

    v_missing := ARRAY(SELECT n.name FROM unnest(ARRAY['pghistory_before_ddl', 'pghistory_after_ddl', 'pghistory_on_drop'])
                                          WITH ORDINALITY AS n(name, i)
                        WHERE NOT EXISTS (SELECT FROM pg_catalog.pg_event_trigger AS e
                                           WHERE e.evtname = n.name AND e.evtenabled <> 'D')
                        ORDER BY n.i);
    RETURN QUERY SELECT 'pghistory', 'event triggers', cardinality(v_missing) = 0,
        CASE WHEN cardinality(v_missing) = 0 THEN 'installed: ALTER TABLE of a tracked table is followed'
             ELSE format('missing (%s): ALTER TABLE of a tracked table is not followed; refresh() brings it in step',
                         array_to_string(v_missing, ', ')) END,
        CASE WHEN cardinality(v_missing) > 0
             THEN 'SELECT pghistory.install_event_triggers(); -- as a superuser or the service''s admin role' END;

    FOR v_table IN
        SELECT t.tracked_table, t.event_table, c.relowner, pghistory._qualified_name(t.tracked_table) AS name,
               EXISTS (SELECT FROM pg_catalog.pg_class AS e WHERE e.oid = t.event_table) AS has_events
          FROM pghistory.tracked AS t
          JOIN pg_catalog.pg_class AS c ON c.oid = t.tracked_table
         ORDER BY 4
    LOOP
        v_names := ARRAY(SELECT f::text FROM pghistory._tracker_functions(v_table.tracked_table) AS f
                          WHERE pg_catalog.obj_description(f::oid, 'pg_proc')
                                IS DISTINCT FROM pghistory._generation_signature(v_table.tracked_table));
        RETURN QUERY SELECT v_table.name, 'trigger functions', cardinality(v_names) = 0,
            CASE WHEN cardinality(v_names) = 0 THEN 'up to date with the table'
                 ELSE format('out of date with the table: %s', array_to_string(v_names, ', ')) END,
            CASE WHEN cardinality(v_names) > 0 THEN format('SELECT pghistory.refresh(%L);', v_table.name) END;

        RETURN QUERY SELECT v_table.name, 'event table', v_table.has_events,
            CASE WHEN v_table.has_events THEN pghistory._qualified_name(v_table.event_table)
                 ELSE 'missing: its history is gone' END,
            CASE WHEN NOT v_table.has_events
                 THEN format('SELECT pghistory.untrack(%L); SELECT pghistory.track(%L);', v_table.name, v_table.name) END;

        v_names := ARRAY(SELECT format('%s (owned by %s)', o.what, pg_catalog.pg_get_userbyid(o.owner))
                           FROM (SELECT pghistory._qualified_name(c.oid::regclass) AS what, c.relowner AS owner
                                   FROM pg_catalog.pg_class AS c WHERE c.oid = v_table.event_table AND v_table.has_events
                                 UNION ALL
                                 SELECT f::text, p.proowner
                                   FROM pghistory._tracker_functions(v_table.tracked_table) AS f
                                   JOIN pg_catalog.pg_proc AS p ON p.oid = f) AS o
                          WHERE o.owner <> v_table.relowner ORDER BY 1);
        RETURN QUERY SELECT v_table.name, 'owners', cardinality(v_names) = 0,
            CASE WHEN cardinality(v_names) = 0
                 THEN format('event table and trigger functions owned by %s, as the table', pg_catalog.pg_get_userbyid(v_table.relowner))
                 ELSE format('not owned by the table''s owner %s: %s', pg_catalog.pg_get_userbyid(v_table.relowner),
                             array_to_string(v_names, ', ')) END,
            CASE WHEN cardinality(v_names) > 0
                 THEN format('SELECT pghistory.refresh(%L); -- as a superuser, or a member of %s and of the roles that own them now',
                             v_table.name, pg_catalog.pg_get_userbyid(v_table.relowner)) END;
    END LOOP;
END
$$;
COMMENT ON FUNCTION pghistory.status() IS
    'pghistory: the install''s health (version, method, event triggers) and each tracked table''s (trigger functions, event table, owners), with the command to run for each problem';
