
-- ---------------------------------------------------------------------------
-- tracking_view.sql: the pghistory.tracking view: what is tracked, and how
-- ---------------------------------------------------------------------------

-- One row per tracked table, with the columns it snapshots.
CREATE OR REPLACE VIEW pghistory.tracking AS
SELECT t.tracked_table,
       t.event_table,
       t.trackers,
       ARRAY(SELECT k.label FROM unnest(t.trackers) AS k) AS labels,
       ARRAY(SELECT c.column_name::text
               FROM pghistory._tracked_columns(t.tracked_table, t.fields, t.exclude) AS c) AS fields,
       t.context,
       t.level,
       t.append_only
  FROM pghistory.tracked AS t;
COMMENT ON VIEW pghistory.tracking IS 'pghistory: the tracked tables and how they are tracked';
