
-- ---------------------------------------------------------------------------
-- blame.sql: for each column of one row, the event that last changed it
-- ---------------------------------------------------------------------------

-- For each tracked column of the object obj_id of tbl (in table order):
-- its value now (from the row; from its last recorded state when the row
-- is gone), and the event that last changed it: the latest event whose
-- pgh_diff names the column, or, when no earlier state of the object is
-- known (its insert, a re-insert, a backfill, its first recorded update),
-- the latest event that recorded it from nothing. pgh_id and the rest are
-- NULL for a column no event accounts for. pgh_context is the context's
-- metadata, as events() shows it. An index lookup on the object's events.
-- Runs with the caller's rights. Refuses untracked tables, tables without
-- a primary key, and obj_ids that are no key value.
CREATE OR REPLACE FUNCTION pghistory.blame(tbl regclass, obj_id anycompatible)
RETURNS TABLE ("column" text, value jsonb, pgh_id bigint, pgh_created_at timestamptz, pgh_label text,
               pgh_context_id uuid, pgh_context jsonb)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $$
DECLARE
    v_config pghistory.tracked := pghistory._time_travel_config(blame.tbl, 'blame()');
    v_current jsonb;
    v_obj_id text;
BEGIN
    PERFORM pghistory._check_history_readable(v_config);
    v_obj_id := pghistory._canonical_obj_id(v_config.event_table, v_config.tracked_table, blame.obj_id::text);
    EXECUTE format('SELECT pg_catalog.to_jsonb(pgh_now) FROM %s AS pgh_now WHERE %s',
                   v_config.tracked_table, pghistory._object_match(v_config.tracked_table, 'pgh_now', '$1'))
       INTO v_current USING v_obj_id;
    RETURN QUERY EXECUTE format($sql$
WITH pgh_events AS MATERIALIZED (
    SELECT e.pgh_id, e.pgh_created_at, e.pgh_label, e.pgh_data, e.pgh_diff, e.pgh_context_id, e.pgh_context,
           %1$s AS pgh_kind
      FROM pghistory.events($1, obj_id => $2) AS e)
SELECT c.column_name::text,
       coalesce($3, (SELECT l.pgh_data FROM pgh_events AS l ORDER BY l.pgh_id DESC LIMIT 1)) -> c.column_name::text,
       b.pgh_id, b.pgh_created_at, b.pgh_label, b.pgh_context_id, b.pgh_context
  FROM pghistory._tracked_columns($4, $5, $6) WITH ORDINALITY AS c(column_name, column_type, ord)
  LEFT JOIN LATERAL (
        SELECT e.* FROM pgh_events AS e
         WHERE e.pgh_diff ? c.column_name::text OR (e.pgh_diff IS NULL AND e.pgh_kind IN ('i', 'n'))
         ORDER BY e.pgh_id DESC LIMIT 1) AS b ON true
 ORDER BY c.ord$sql$,
        pghistory._event_kind_expression(v_config.trackers, 'e.pgh_label'))
        USING v_config.tracked_table, v_obj_id, v_current,
              v_config.tracked_table, v_config.fields, v_config.exclude;
END
$$;

COMMENT ON FUNCTION pghistory.blame(regclass, anycompatible) IS
    'pghistory: for each tracked column of one row, its value and the event that last changed it';
