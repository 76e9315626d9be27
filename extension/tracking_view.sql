
-- ---------------------------------------------------------------------------
-- tracking_view.sql: the pghistory.tracking view: what is tracked, and how
-- ---------------------------------------------------------------------------

-- A tracker as the constructor call that makes it, e.g.
--   update_event('status_changed', changed => '{status}', snapshot => 'old')
-- (arguments left at their defaults are left out).
CREATE OR REPLACE FUNCTION pghistory._tracker_call(p_tracker pghistory.tracker)
RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT format('%s_event(%s)', p_tracker.operation, concat_ws(', ',
               quote_literal(p_tracker.label),
               'changed => ' || quote_literal(p_tracker.changed::text),
               'condition => ' || quote_literal(p_tracker.condition),
               CASE WHEN p_tracker.snapshot <> CASE WHEN p_tracker.operation IN ('delete', 'truncate')
                                                     THEN 'old' ELSE 'new' END
                    THEN 'snapshot => ' || quote_literal(p_tracker.snapshot) END))
$$;

-- One row per tracked table, with the columns it snapshots. Never raises
-- (a registry row whose table is gone shows with no fields), and every
-- role may read it.
CREATE OR REPLACE VIEW pghistory.tracking AS
SELECT t.tracked_table,
       t.event_table,
       ARRAY(SELECT pghistory._tracker_call(k) FROM unnest(t.trackers) AS k) AS trackers,
       ARRAY(SELECT k.label FROM unnest(t.trackers) AS k) AS labels,
       ARRAY(SELECT c.column_name::text
               FROM pghistory._tracked_columns(t.tracked_table, t.fields, t.exclude) AS c) AS fields,
       t.context,
       t.level,
       t.append_only
  FROM pghistory.tracked AS t;
COMMENT ON VIEW pghistory.tracking IS 'pghistory: the tracked tables and how they are tracked';
