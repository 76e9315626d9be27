
-- ---------------------------------------------------------------------------
-- backfill.sql: a baseline for rows that were there before tracking began
-- ---------------------------------------------------------------------------

-- Records one snapshot, labelled `label`, of every row of tbl whose object
-- has no event yet, with the active context, in one INSERT ... SELECT: a
-- table tracked after it had data gets a complete past from this moment on
-- (the next update of a row has a diff). Running it again records only the
-- rows that still have no event. Takes a SHARE lock on tbl for the rest of
-- the transaction, so that no write to a row slips between its snapshot and
-- the check that it had no event. Runs with the caller's rights: it needs
-- SELECT on tbl and INSERT on its event table (the table's owner has both).
-- Refuses untracked tables, tables without a primary key, and a label that
-- belongs to an insert, update, delete or truncate tracker (its events
-- would read as that change). Returns the number of rows recorded.
CREATE OR REPLACE FUNCTION pghistory.backfill(tbl regclass, label text DEFAULT 'backfill')
RETURNS bigint
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_config pghistory.tracked := pghistory._time_travel_config(backfill.tbl, 'backfill()');
    v_lists record;
    v_context_id uuid;
    v_context jsonb;
    v_count bigint;
BEGIN
    IF backfill.label IS NULL OR backfill.label = '' THEN
        RAISE EXCEPTION 'pghistory: backfill() needs a label, not %', quote_nullable(backfill.label)
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Leave label out for ''backfill''.';
    END IF;
    IF backfill.label = ANY (ARRAY['insert', 'update', 'delete', 'truncate']
                             || ARRAY(SELECT k.label FROM unnest(v_config.trackers) AS k WHERE k.operation <> 'manual')) THEN
        RAISE EXCEPTION 'pghistory: label % is that of a change (% tracker), not of a baseline', quote_literal(backfill.label),
                coalesce((SELECT k.operation FROM unnest(v_config.trackers) AS k WHERE k.label = backfill.label), backfill.label)
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Leave label out for ''backfill'', or give a label of its own (or of a manual_event).';
    END IF;
    IF NOT (has_table_privilege(v_config.tracked_table, 'SELECT')
            AND has_table_privilege(v_config.event_table, 'INSERT')) THEN
        RAISE EXCEPTION 'pghistory: permission denied to backfill %', pghistory._qualified_name(v_config.tracked_table)
            USING ERRCODE = 'insufficient_privilege',
                  HINT = format('backfill() needs SELECT on %s and INSERT on %s: run it as the table''s owner.',
                                v_config.tracked_table, v_config.event_table);
    END IF;
    IF v_config.context IN ('fk', 'json') THEN
        v_context_id := pghistory.current_context_id();
    END IF;
    IF v_config.context = 'json' AND v_context_id IS NOT NULL THEN
        v_context := pghistory._context_metadata();
    END IF;

    EXECUTE format('LOCK TABLE %s IN SHARE MODE', v_config.tracked_table);
    SELECT l.target, l.vals INTO v_lists
      FROM pghistory._snapshot_lists(v_config, 'new', '$1', '$2', '$3') AS l;
    SELECT l.target, l.vals INTO v_lists  -- numbered on the node of the row, on Citus
      FROM pghistory._citus_coordinator_lists(v_config, 'new', v_lists.target, v_lists.vals) AS l;
    EXECUTE format($sql$INSERT INTO %1$s (%2$s)
SELECT %3$s
  FROM %4$s AS new
 WHERE NOT EXISTS (SELECT FROM %1$s AS pgh_event WHERE pgh_event.pgh_obj_id = %5$s%6$s)$sql$,
                   v_config.event_table, v_lists.target, v_lists.vals, v_config.tracked_table,
                   pghistory._object_key(v_config.tracked_table, 'new'),
                   pghistory._citus_same_shard(v_config.event_table, 'pgh_event', 'new'))
      USING backfill.label, v_context_id, v_context;
    GET DIAGNOSTICS v_count = ROW_COUNT;
    IF v_count > 0 AND v_config.context = 'fk' AND v_context_id IS NOT NULL THEN
        PERFORM pghistory._attach_context(v_context_id, current_setting('pghistory.context_metadata', true));
    END IF;
    RETURN v_count;
END
$$;

COMMENT ON FUNCTION pghistory.backfill(regclass, text) IS
    'pghistory: snapshots every row of a tracked table that has no event yet (a baseline), with the active context; returns how many';
