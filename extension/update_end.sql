
-- ---------------------------------------------------------------------------
-- update_end.sql: the last step of every update script
--
-- The generated trigger functions are not members of the extension (they
-- belong to the tracked tables, and pg_dump must dump them): an update
-- that changed the code that writes them regenerates them here, for every
-- tracked table, and takes them out of the extension again, since
-- anything an extension script creates becomes a member.
-- ---------------------------------------------------------------------------

-- gone in 0.2.0, and called by 0.1.0's event triggers until the code parts replaced them
DROP FUNCTION IF EXISTS pghistory._following_schema();

DO $$
DECLARE
    v_table regclass;
    v_function regprocedure;
BEGIN
    FOR v_table IN SELECT t.tracked_table FROM pghistory.tracked AS t ORDER BY t.tracked_table::text LOOP
        PERFORM pghistory._generate_triggers(v_table);
        FOR v_function IN SELECT pghistory._tracker_functions(v_table)
                           WHERE EXISTS (SELECT FROM pg_catalog.pg_extension AS e WHERE e.extname = 'pghistory') LOOP
            EXECUTE format('ALTER EXTENSION pghistory DROP FUNCTION %s', v_function);
        END LOOP;
    END LOOP;
END
$$;
