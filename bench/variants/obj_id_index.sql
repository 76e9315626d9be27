-- Proposal measured by the bench (bench/run.py --variant obj_id_index=bench/variants/obj_id_index.sql):
-- index event tables on (pgh_obj_id) alone instead of (pgh_obj_id, pgh_id).
-- A single-column index deduplicates (PostgreSQL 13+): an object's many events
-- share one index tuple, where (pgh_obj_id, pgh_id) is unique and cannot.
-- One object's history is still one index lookup; its few events are sorted
-- by pgh_id after it.  Not adopted: without pgh_id in the index, "the latest
-- event of each object" (WHERE pgh_obj_id = x ORDER BY pgh_id DESC LIMIT 1, the
-- query users write) is no longer one probe, and the planner may walk the
-- pgh_id index backwards instead; a test of the suite that runs it per row went
-- from milliseconds to more than 45 seconds.
-- A patch, not a copy: it rewrites that one line of the installed
-- pghistory._create_event_table (extension/event_tables.sql), and refuses to
-- run when the line is no longer there, so it cannot drift from the function.
DO $patch$
DECLARE
    v_definition text := pg_catalog.pg_get_functiondef('pghistory._create_event_table(name, name, regclass)'::regprocedure);
    v_from text := $$'CREATE INDEX ON %s (pgh_obj_id, pgh_id)'$$;
    v_to text := $$'CREATE INDEX ON %s (pgh_obj_id)'$$;
BEGIN
    IF strpos(v_definition, v_from) = 0 THEN
        RAISE EXCEPTION 'bench/variants/obj_id_index.sql: pghistory._create_event_table no longer says %', v_from
            USING HINT = 'Update the patch to the function''s current definition.';
    END IF;
    EXECUTE replace(v_definition, v_from, v_to);
END
$patch$;
