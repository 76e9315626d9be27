
-- ---------------------------------------------------------------------------
-- diffs.sql: how events() reads an event: its kind, its pgh_data and its
-- pgh_diff
--
-- What pgh_diff means. Each event's pgh_data records the row's values at
-- one moment: right AFTER the change for 'new' snapshots (insert, update,
-- manual events) and right BEFORE it for 'old' snapshots (update_event(
-- snapshot => 'old'), delete, truncate). Sorting an object's events by
-- pgh_id gives a timeline of recorded states, and pgh_diff is the change
-- the event itself stands for, {"col": [before, after]} for each column
-- whose value differs, read off the neighbouring recorded states:
--   insert                  NULL: the row did not exist before.
--   update (new), manual    from the state recorded by the object's previous
--                           event to this event's own. NULL when there is no
--                           previous event, or it was a delete/truncate (the
--                           state in between was not recorded).
--   update (old)            from this event's own state (before the update)
--                           to the state recorded by the object's NEXT event:
--                           the change this update made. NULL while there is
--                           no next event yet, or when it is an insert.
--   delete, truncate        {} : removing a row changes none of its values;
--                           pgh_data is the row as it was removed.
-- So an update's diff is always the change that update made, whichever row
-- its tracker stores (django-pghistory compares each snapshot with the one
-- before it, which shifts every 'old' snapshot's diff onto the next event).
-- The kind of an event is looked up by its label among the table's current
-- trackers; labels no tracker has (any more) count as 'new' snapshots,
-- except 'insert', 'delete' and 'truncate', which keep their default kind.
-- Rows without pgh_obj_id (tables without a primary key)
-- cannot be told apart, so their updates have no diff.
-- ---------------------------------------------------------------------------

-- How an event of each label is to be read (see the header): 'i' insert,
-- 'n' a 'new' snapshot (update, manual), 'o' an 'old' snapshot of an
-- update, 'd' delete or truncate. Returns a CASE expression over
-- p_label_expression, built from the trackers (NULL: none known).
CREATE OR REPLACE FUNCTION pghistory._event_kind_expression(p_trackers pghistory.tracker[], p_label_expression text)
RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT format('CASE %s %s ELSE ''n'' END', p_label_expression,
                  string_agg(format('WHEN %L THEN %L', k.label, k.kind), ' ' ORDER BY k.ord))
      FROM (SELECT t.label, t.ord,
                   CASE WHEN t.operation = 'insert' THEN 'i'
                        WHEN t.operation IN ('delete', 'truncate') THEN 'd'
                        WHEN t.operation = 'update' AND t.snapshot = 'old' THEN 'o'
                        ELSE 'n' END AS kind
              FROM unnest(p_trackers) WITH ORDINALITY AS t(label, operation, condition, changed, snapshot, ord)
            UNION ALL
            SELECT d.label, 1000 + d.ord, d.kind
              FROM (VALUES ('insert', 'i', 1), ('delete', 'd', 2), ('truncate', 'd', 3)) AS d(label, kind, ord)
             WHERE NOT EXISTS (SELECT FROM unnest(p_trackers) AS t WHERE t.label = d.label)) AS k
$$;

-- The data columns of an event table (every column but pghistory's own
-- pgh_* ones), in table order, with what an expression needs to compare
-- two values of each: '' when its type has an equality operator, '::text'
-- when it has none (json, xml, point), as the trigger functions do.
CREATE OR REPLACE FUNCTION pghistory._data_columns(p_event_table regclass)
RETURNS TABLE (column_name name, cast_to text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT a.attname, CASE WHEN t.has_equality THEN '' ELSE '::text' END
      FROM pg_catalog.pg_attribute AS a
      JOIN (SELECT y.atttypid, y.atttypmod,   -- probed once per type
                   pghistory._has_equality(format_type(y.atttypid, y.atttypmod)) AS has_equality
              FROM (SELECT DISTINCT x.atttypid, x.atttypmod FROM pg_catalog.pg_attribute AS x
                     WHERE x.attrelid = p_event_table AND x.attnum > 0 AND NOT x.attisdropped
                       AND x.attname NOT LIKE 'pgh\_%' OFFSET 0) AS y) AS t
        ON t.atttypid = a.atttypid AND t.atttypmod = a.atttypmod
     WHERE a.attrelid = p_event_table AND a.attnum > 0 AND NOT a.attisdropped
       AND a.attname NOT LIKE 'pgh\_%'
     ORDER BY a.attnum
$$;

-- The SQL expression of an event's pgh_data: the data columns p_columns
-- of row p_row as a jsonb object. (jsonb_build_object takes at most 50
-- pairs, so wide tables get several, joined with ||.)
CREATE OR REPLACE FUNCTION pghistory._data_expression(p_columns name[], p_row text)
RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce(string_agg(c.chunk, ' || ' ORDER BY c.n), '''{}''::jsonb')
      FROM (SELECT (d.ord - 1) / 50 AS n,
                   format('pg_catalog.jsonb_build_object(%s)',
                          string_agg(format('%L, %s.%I', d.column_name, p_row, d.column_name), ', ' ORDER BY d.ord)) AS chunk
              FROM unnest(p_columns) WITH ORDINALITY AS d(column_name, ord)
             GROUP BY (d.ord - 1) / 50) AS c
$$;

-- The SQL expression of the diff from row p_old to row p_new: {"col":
-- [old value, new value]} for each of p_columns whose values differ, {}
-- when none does. p_casts holds, per column, '' or the cast to compare its
-- values through ('::text' for types without equality, see _data_columns).
CREATE OR REPLACE FUNCTION pghistory._diff_expression(p_columns name[], p_casts text[], p_old text, p_new text)
RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT '''{}''::jsonb' || coalesce(string_agg(
               format(E'\n              || CASE WHEN %1$s.%3$I%4$s IS DISTINCT FROM %2$s.%3$I%4$s'
                      ' THEN pg_catalog.jsonb_build_object(%5$L, pg_catalog.jsonb_build_array(%1$s.%3$I, %2$s.%3$I))'
                      ' ELSE ''{}''::jsonb END',
                      p_old, p_new, c.column_name, c.cast_to, c.column_name), '' ORDER BY c.ord), '')
      FROM unnest(p_columns, p_casts) WITH ORDINALITY AS c(column_name, cast_to, ord)
$$;
