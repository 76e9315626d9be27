-- Proposal measured by the bench (bench/run.py --variant xact=bench/variants/xact.sql):
-- a transaction record in every event, pgh_xact xid8 DEFAULT pg_current_xact_id(),
-- after pgh_created_at (8 bytes, 8-aligned: no padding either side), so that the
-- events of one transaction can be grouped. Not adopted: 8 bytes an event, 1.13x
-- django-pghistory's bytes in a reduced run (bench/RESULTS.md, "Bytes per event:
-- order and transaction record"); a 4-byte xid after pgh_obj_id cost the same 8.
-- A patch, not a copy: it rewrites one line of the installed
-- pghistory._create_event_table (extension/event_tables.sql), and refuses to run
-- when the line is no longer there, so it cannot drift from the function.
DO $patch$
DECLARE
    v_definition text := pg_catalog.pg_get_functiondef('pghistory._create_event_table(name, name, regclass)'::regprocedure);
    v_from text := $$pgh_created_at timestamptz NOT NULL DEFAULT pg_catalog.now(),$$;
    v_to text := $$pgh_created_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
            pgh_xact       xid8        DEFAULT pg_catalog.pg_current_xact_id(),$$;
BEGIN
    IF strpos(v_definition, v_from) = 0 THEN
        RAISE EXCEPTION 'bench/variants/xact.sql: pghistory._create_event_table no longer says %', v_from
            USING HINT = 'Update the patch to the function''s current definition.';
    END IF;
    EXECUTE replace(v_definition, v_from, v_to);
END
$patch$;
