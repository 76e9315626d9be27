
-- ---------------------------------------------------------------------------
-- columns.sql: which columns of a table are tracked, its key, and how its
-- values compare
-- ---------------------------------------------------------------------------

-- The single-column primary key of a table: its name and type. No row when
-- the table has no primary key or a composite one (see _object_key()).
CREATE OR REPLACE FUNCTION pghistory._primary_key(p_table regclass)
RETURNS TABLE (column_name name, column_type text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT a.attname, format_type(a.atttypid, a.atttypmod)
      FROM pg_catalog.pg_index AS i
      JOIN pg_catalog.pg_attribute AS a
        ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
     WHERE i.indrelid = p_table
       AND i.indisprimary
       AND i.indnkeyatts = 1
$$;

-- All columns of a table's primary key, in key order, with their types.
-- No row when the table has no primary key.
CREATE OR REPLACE FUNCTION pghistory._key_columns(p_table regclass)
RETURNS TABLE (column_name name, column_type text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT a.attname, format_type(a.atttypid, a.atttypmod)
      FROM pg_catalog.pg_index AS i
     CROSS JOIN LATERAL unnest(i.indkey[0:i.indnkeyatts - 1]) WITH ORDINALITY AS k(attnum, n)
      JOIN pg_catalog.pg_attribute AS a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
     WHERE i.indrelid = p_table AND i.indisprimary
     ORDER BY k.n
$$;

-- Whether values of a type can be compared with IS DISTINCT FROM. Types
-- without an equality operator (json, xml, point, ...) are compared as text
-- instead. Probed once, at track() time.
CREATE OR REPLACE FUNCTION pghistory._has_equality(p_type text)
RETURNS boolean
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    EXECUTE format('SELECT NULL::%s IS DISTINCT FROM NULL::%s', p_type, p_type);
    RETURN true;
EXCEPTION WHEN undefined_function THEN
    RETURN false;
END
$$;

-- The columns a configuration snapshots, in table order: every column, or
-- those of `fields` the table has, or every column but `exclude`. A
-- look-up that never raises (the pghistory.tracking view reads it for
-- every row of the registry, stale ones too); track() and the following
-- of schema changes check a configuration with _check_tracked_columns().
CREATE OR REPLACE FUNCTION pghistory._tracked_columns(p_table regclass, p_fields text[], p_exclude text[])
RETURNS TABLE (column_name name, column_type text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT a.attname, format_type(a.atttypid, a.atttypmod)
      FROM pg_catalog.pg_attribute AS a
     WHERE a.attrelid = p_table AND a.attnum > 0 AND NOT a.attisdropped
       AND (p_fields IS NULL OR a.attname = ANY (p_fields))
       AND (p_exclude IS NULL OR a.attname <> ALL (p_exclude))
     ORDER BY a.attnum
$$;

-- The checks of fields and exclude that track() makes: refuses both
-- given, unknown names, an empty list, names that collide with the event
-- table's own pgh_* columns, and a configuration that leaves no column.
CREATE OR REPLACE FUNCTION pghistory._check_tracked_columns(p_table regclass, p_fields text[], p_exclude text[])
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_unknown text[];
    v_reserved text[];
BEGIN
    IF p_fields IS NOT NULL AND p_exclude IS NOT NULL THEN
        RAISE EXCEPTION 'pghistory: give fields or exclude, not both'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'fields lists the columns to track; exclude lists the columns to leave out.';
    END IF;

    SELECT array_agg(f ORDER BY f) INTO v_unknown
      FROM unnest(coalesce(p_fields, p_exclude)) AS f
     WHERE NOT EXISTS (SELECT FROM pg_catalog.pg_attribute AS a
                        WHERE a.attrelid = p_table AND a.attname = f
                          AND a.attnum > 0 AND NOT a.attisdropped);
    IF v_unknown IS NOT NULL THEN
        RAISE EXCEPTION 'pghistory: % has no column %', pghistory._qualified_name(p_table),
                array_to_string(ARRAY(SELECT format('%I', u) FROM unnest(v_unknown) AS u), ', ')
            USING ERRCODE = 'undefined_column',
                  HINT = format('Check the names given in %s; column names are case-sensitive.',
                                CASE WHEN p_fields IS NOT NULL THEN 'fields' ELSE 'exclude' END);
    END IF;

    IF p_fields = '{}' THEN
        RAISE EXCEPTION 'pghistory: fields is empty, so there is nothing to track'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Name at least one column, or pass NULL to track every column.';
    END IF;

    SELECT array_agg(c.column_name ORDER BY c.column_name) INTO v_reserved
      FROM pghistory._tracked_columns(p_table, p_fields, p_exclude) AS c
     WHERE c.column_name LIKE 'pgh\_%';
    IF v_reserved IS NOT NULL THEN
        RAISE EXCEPTION 'pghistory: column % of % clashes with the event table''s own pgh_* columns',
                v_reserved[1], pghistory._qualified_name(p_table)
            USING ERRCODE = 'duplicate_column',
                  HINT = 'Leave it out with exclude => ''{' || v_reserved[1] || '}'', or rename it.';
    END IF;

    IF NOT EXISTS (SELECT FROM pghistory._tracked_columns(p_table, p_fields, p_exclude)) THEN
        RAISE EXCEPTION 'pghistory: no column of % is left to track', pghistory._qualified_name(p_table)
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'exclude leaves out every column; track at least one.';
    END IF;
END
$$;
