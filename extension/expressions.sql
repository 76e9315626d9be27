
-- ---------------------------------------------------------------------------
-- expressions.sql: the SQL expressions the generated trigger functions are
-- made of: what changed, what is stored, how update rows pair
-- ---------------------------------------------------------------------------

-- A comparison of two rows' columns that holds when any of them differs.
-- Types without an equality operator (json, xml, point) compare as text.
CREATE OR REPLACE FUNCTION pghistory._changed_expression(p_tracked regclass, p_columns text[],
                                              p_old text, p_new text)
RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT format('(%s) IS DISTINCT FROM (%s)',
                  string_agg(p_old || '.' || pghistory._quoted(a.attname) || c.cast_to, ', ' ORDER BY a.attnum),
                  string_agg(p_new || '.' || pghistory._quoted(a.attname) || c.cast_to, ', ' ORDER BY a.attnum))
      FROM pg_catalog.pg_attribute AS a
     CROSS JOIN LATERAL (
           SELECT CASE WHEN pghistory._has_equality(format_type(a.atttypid, a.atttypmod))
                       THEN '' ELSE '::text' END AS cast_to) AS c
     WHERE a.attrelid = p_tracked AND a.attname = ANY (p_columns)
       AND a.attnum > 0 AND NOT a.attisdropped
$$;

-- The column list and the value list of the INSERT that stores a snapshot:
-- pgh_label, pgh_obj_id, the context columns of the mode, and the tracked
-- columns read from p_source (a row alias: new, old, NEW, OLD). The label
-- and context values are SQL expressions given by the caller.
CREATE OR REPLACE FUNCTION pghistory._snapshot_lists(p_config pghistory.tracked, p_source text, p_label text,
                                          p_context_id text, p_context text,
                                          OUT target text, OUT vals text)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_key text := pghistory._object_key(p_config.tracked_table, p_source);
    v_columns text[] := ARRAY(SELECT column_name FROM pghistory._tracked_columns(
                                  p_config.tracked_table, p_config.fields, p_config.exclude));
BEGIN
    target := 'pgh_label, pgh_obj_id';
    vals := p_label || ', ' || coalesce(v_key, 'NULL');
    IF p_config.context IN ('fk', 'json') THEN
        target := target || ', pgh_context_id';
        vals := vals || ', ' || p_context_id;
    END IF;
    IF p_config.context = 'json' THEN
        target := target || ', pgh_context';
        vals := vals || ', ' || p_context;
    END IF;
    target := target || ', ' || array_to_string(ARRAY(SELECT pghistory._quoted(c) FROM unnest(v_columns) AS c), ', ');
    vals := vals || ', ' || array_to_string(ARRAY(SELECT p_source || '.' || pghistory._quoted(c) FROM unnest(v_columns) AS c), ', ');
END
$$;

-- The FROM clause that pairs each row an UPDATE statement changed with its
-- other version, for the update tracker storing p_snapshot ('new' or 'old').
-- Rows are paired on all the columns of the primary key: the old row of a
-- key is the one that had that key before the statement. A row whose key
-- the statement changed has no partner, and is kept with the other side
-- NULL: its tracked columns differ from NULLs, so the default tracker
-- records it, and a condition sees it as a row that had no old version.
-- Only tables without a primary key (or with a key column whose type has
-- no equality operator in pg_catalog) pair by position in the transition
-- tables, which PostgreSQL fills in step but does not promise to (two
-- sorts: slower on large statements too).
--
-- p_full: a FULL JOIN, which PostgreSQL runs only as a hash or a merge
-- join, never as a nested loop, for statements of many rows (see
-- _update_statement() in trigger_parts.sql); _update_keeps() then drops
-- the rows that only the other side has (the old version of a changed key).
CREATE OR REPLACE FUNCTION pghistory._update_pairing(p_tracked regclass, p_snapshot text, p_full boolean)
RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce(
        (SELECT format(E'pgh_%1$s_rows AS %1$s\n'
                        '      %4$s JOIN pgh_%2$s_rows AS %2$s ON %3$s',
                       p_snapshot, CASE p_snapshot WHEN 'new' THEN 'old' ELSE 'new' END,
                       string_agg(format('%1$s.%3$s = %2$s.%3$s', CASE p_snapshot WHEN 'new' THEN 'old' ELSE 'new' END,
                                         p_snapshot, pghistory._quoted(k.column_name)), ' AND ' ORDER BY k.n),
                       CASE WHEN p_full THEN 'FULL' ELSE 'LEFT' END)
           FROM pghistory._key_columns(p_tracked) WITH ORDINALITY AS k(column_name, column_type, n)
         HAVING count(*) > 0 AND bool_and(pghistory._has_equality(k.column_type))),
        format(E'(SELECT row_number() OVER () AS pgh_row, * FROM pgh_old_rows) AS old\n'
               '      %sJOIN (SELECT row_number() OVER () AS pgh_row, * FROM pgh_new_rows) AS new USING (pgh_row)',
               CASE WHEN p_full THEN 'FULL ' ELSE '' END))
$$;

-- The WHERE clause of the FULL JOIN pairing: p_when (what changed, the
-- tracker's condition) on the rows that have a p_snapshot side. Wrapped in
-- coalesce(..., false) on purpose: PostgreSQL turns a FULL JOIN back into
-- a LEFT or an inner join (which may run as a nested loop) when the WHERE
-- clause cannot be true on a NULL side, and does not look inside coalesce.
CREATE OR REPLACE FUNCTION pghistory._update_keeps(p_tracked regclass, p_snapshot text, p_when text)
RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT format(E'coalesce(%s\n       AND %s, false)',
                  -- a key column is never NULL in a row of the table, only on a NULL side;
                  -- paired by position (no key), every row has both sides
                  coalesce((SELECT format('%s.%s IS NOT NULL', p_snapshot, pghistory._quoted(k.column_name))
                              FROM pghistory._key_columns(p_tracked) AS k LIMIT 1),
                           'true'),
                  p_when)
$$;
