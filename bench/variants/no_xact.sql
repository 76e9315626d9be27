-- What the transaction record costs (bench/run.py --variant no_xact=bench/variants/no_xact.sql):
-- event tables made without pgh_xact, the xid8 column pghistory gives every event
-- (extension/event_tables.sql) so that events can be grouped by transaction. Its
-- 8 bytes (8-aligned, right after pgh_created_at) are the difference in bytes per
-- event; the column default pg_current_xact_id() is the difference in writes.
-- A patch, not a copy: it removes the column from pghistory._create_event_table and
-- turns off _add_event_columns()'s adding it to a table without it (which track()
-- would otherwise do, at the end of the row), and refuses to run when either text
-- is no longer there, so it cannot drift from the functions.
DO $patch$
DECLARE
    v_patch record;
    v_definition text;
BEGIN
    FOR v_patch IN
        SELECT * FROM (VALUES
            ('pghistory._create_event_table(name, name, regclass)', $$
            pgh_xact       xid8        DEFAULT pg_catalog.pg_current_xact_id(),$$, ''),
            ('pghistory._add_event_columns(pghistory.tracked)',
             $$attname = 'pgh_xact' AND NOT attisdropped) THEN$$,
             $$attname = 'pgh_xact' AND NOT attisdropped) AND false THEN$$)) AS p(function, old, new)
    LOOP
        v_definition := pg_catalog.pg_get_functiondef(v_patch.function::regprocedure);
        IF strpos(v_definition, v_patch.old) = 0 THEN
            RAISE EXCEPTION 'bench/variants/no_xact.sql: % no longer says %', v_patch.function, v_patch.old
                USING HINT = 'Update the patch to the function''s current definition.';
        END IF;
        EXECUTE replace(v_definition, v_patch.old, v_patch.new);
    END LOOP;
END
$patch$;
