-- What the transaction record costs (bench/run.py --variant no_xact=bench/variants/no_xact.sql):
-- event tables made without pgh_xact, the xid8 column pghistory gives every event
-- (extension/event_tables.sql) so that events can be grouped by transaction. Its
-- 8 bytes (8-aligned, right after pgh_created_at) are the difference in bytes per
-- event; the column default pg_current_xact_id() is the difference in writes.
-- A patch, not a copy: it removes one line of the installed
-- pghistory._create_event_table, and refuses to run when the line is no longer
-- there, so it cannot drift from the function.
DO $patch$
DECLARE
    v_definition text := pg_catalog.pg_get_functiondef('pghistory._create_event_table(name, name, regclass)'::regprocedure);
    v_line text := $$
            pgh_xact       xid8        DEFAULT pg_catalog.pg_current_xact_id(),$$;
BEGIN
    IF strpos(v_definition, v_line) = 0 THEN
        RAISE EXCEPTION 'bench/variants/no_xact.sql: pghistory._create_event_table no longer says %', v_line
            USING HINT = 'Update the patch to the function''s current definition.';
    END IF;
    EXECUTE replace(v_definition, v_line, '');
END
$patch$;
