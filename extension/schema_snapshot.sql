
-- ---------------------------------------------------------------------------
-- schema_snapshot.sql: what a tracked table looks like, to compare before and
-- after a schema change, the conversions that follow one, and the check of
-- an altered event table
-- ---------------------------------------------------------------------------

-- What the trigger functions of each tracked table depend on: its name,
-- its owner, its event table's name, its columns (by attnum: name, type, typmod,
-- collation), its primary key column and its partitions; and the event
-- table's column names (event_columns, to check, not to follow). One
-- jsonb object keyed by the tracked table's oid; p_tables limits it to
-- some tables.
CREATE OR REPLACE FUNCTION pghistory._schema_snapshot(p_tables regclass[] DEFAULT NULL)
RETURNS jsonb
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce(jsonb_object_agg(c.oid::text, jsonb_build_object(
               'table', format('%I.%I', n.nspname, c.relname),
               'owner', c.relowner,
               'event_table', (SELECT format('%I.%I', en.nspname, ec.relname)
                                 FROM pg_catalog.pg_class AS ec
                                 JOIN pg_catalog.pg_namespace AS en ON en.oid = ec.relnamespace
                                WHERE ec.oid = t.event_table),
               'columns', (SELECT jsonb_object_agg(a.attnum::text, jsonb_build_array(
                                      a.attname, a.atttypid, a.atttypmod, a.attcollation))
                             FROM pg_catalog.pg_attribute AS a
                            WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped),
               'key', (SELECT jsonb_agg(k.column_name) FROM pghistory._key_columns(c.oid) AS k),
               'tree', (SELECT jsonb_agg(r.relid::oid ORDER BY r.relid::oid)
                          FROM pghistory._table_tree(c.oid) AS r),
               'event_columns', (SELECT jsonb_agg(e.attname ORDER BY e.attnum)
                                   FROM pg_catalog.pg_attribute AS e
                                  WHERE e.attrelid = t.event_table AND e.attnum > 0 AND NOT e.attisdropped))), '{}')
      FROM pghistory.tracked AS t
      JOIN pg_catalog.pg_class AS c ON c.oid = t.tracked_table
      JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
     WHERE p_tables IS NULL OR t.tracked_table = ANY (p_tables)
$$;

-- A tracker condition with references to a renamed column (OLD.name,
-- NEW."Name") pointed at its new name. Anything else is left alone; the
-- result is checked by compiling it, so a reference this misses is
-- reported rather than silently broken.
CREATE OR REPLACE FUNCTION pghistory._rename_in_condition(p_condition text, p_old name, p_new name)
RETURNS text
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_result text := p_condition;
    v_new text := replace(quote_ident(p_new), '\', '\\');
BEGIN
    IF v_result IS NULL THEN
        RETURN NULL;
    END IF;
    -- quoted: OLD."Old Name" (case-sensitive name, case-insensitive OLD/NEW)
    v_result := regexp_replace(v_result,
        '(\m(?:[Oo][Ll][Dd]|[Nn][Ee][Ww])\s*\.\s*)'
        || regexp_replace('"' || replace(p_old, '"', '""') || '"', '([\\^$.|?*+()\[\]{}])', '\\\1', 'g'),
        '\1' || v_new, 'g');
    -- unquoted: old.status, OLD.Status (folded to lower case)
    IF p_old ~ '^[a-z_][a-z0-9_$]*$' THEN
        v_result := regexp_replace(v_result,
            '(\m(?:old|new)\s*\.\s*)' || replace(p_old, '$', '\$') || '(?![a-z0-9_$])',
            '\1' || v_new, 'gi');
    END IF;
    RETURN v_result;
END
$$;

-- Converts an event table column to the type of the tracked column it
-- records: first as PostgreSQL assigns (refusing values that do not fit,
-- never truncating), and only when no assignment cast exists with an
-- explicit cast (USING col::type). Refuses, with what to do, when the
-- history does not convert.
CREATE OR REPLACE FUNCTION pghistory._convert_event_column(p_event_table regclass, p_column name,
                                                p_type text, p_collation text, p_tracked regclass)
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_old_type text := (SELECT format_type(a.atttypid, a.atttypmod) FROM pg_catalog.pg_attribute AS a
                         WHERE a.attrelid = p_event_table AND a.attname = p_column);
    v_message text;
BEGIN
    BEGIN
        BEGIN
            EXECUTE format('ALTER TABLE %s ALTER COLUMN %I TYPE %s%s', p_event_table, p_column, p_type, p_collation);
        EXCEPTION WHEN datatype_mismatch THEN
            EXECUTE format('ALTER TABLE %s ALTER COLUMN %I TYPE %s%s USING %I::%s', p_event_table, p_column,
                           p_type, p_collation, p_column, p_type);
        END;
    EXCEPTION WHEN OTHERS THEN
        GET STACKED DIAGNOSTICS v_message = MESSAGE_TEXT;
        RAISE EXCEPTION 'pghistory: the history of %.% cannot be converted from % to %',
                pghistory._qualified_name(p_tracked), quote_ident(p_column), v_old_type, p_type
            USING ERRCODE = 'datatype_mismatch',
                  DETAIL = format('Converting column %I of the event table %s failed: %s',
                                  p_column, p_event_table, v_message),
                  HINT = format('Convert the history first, the way you want it converted: '
                                'ALTER TABLE %s ALTER COLUMN %I TYPE %s USING <expression>; '
                                'then run this ALTER TABLE again.', p_event_table, p_column, p_type);
    END;
END
$$;

-- The event table of p_config brought in step with its tracked table:
-- new columns added, changed types and collations converted, pgh_obj_id in
-- the type of the primary key. Refuses history that does not convert.
CREATE OR REPLACE FUNCTION pghistory._follow_column_types(p_tracked regclass, p_config pghistory.tracked)
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_column record;
    v_key_type text;
BEGIN
    -- the event table: new columns added, changed types converted
    PERFORM pghistory._add_event_columns(p_config);
    FOR v_column IN
        SELECT c.column_name, c.column_type,
               CASE WHEN a.attcollation <> e.attcollation AND a.attcollation <> 0
                    THEN format(' COLLATE %I.%I', cn.nspname, co.collname) ELSE '' END AS collation
          FROM pghistory._tracked_columns(p_tracked, p_config.fields, p_config.exclude) AS c
          JOIN pg_catalog.pg_attribute AS a ON a.attrelid = p_tracked AND a.attname = c.column_name
          JOIN pg_catalog.pg_attribute AS e ON e.attrelid = p_config.event_table AND e.attname = c.column_name
                                           AND e.attnum > 0 AND NOT e.attisdropped
          LEFT JOIN pg_catalog.pg_collation AS co ON co.oid = a.attcollation
          LEFT JOIN pg_catalog.pg_namespace AS cn ON cn.oid = co.collnamespace
         WHERE (a.atttypid, a.atttypmod) IS DISTINCT FROM (e.atttypid, e.atttypmod)
            OR (a.attcollation <> e.attcollation AND a.attcollation <> 0)
         ORDER BY a.attnum
    LOOP
        PERFORM pghistory._convert_event_column(p_config.event_table, v_column.column_name,
                                                v_column.column_type, v_column.collation, p_tracked);
    END LOOP;
    -- pgh_obj_id follows the type of the primary key (text for a composite one)
    v_key_type := pghistory._object_key_type(p_tracked);
    IF pghistory._object_key(p_tracked, 'r') IS NOT NULL AND v_key_type IS DISTINCT FROM (
            SELECT format_type(e.atttypid, e.atttypmod) FROM pg_catalog.pg_attribute AS e
             WHERE e.attrelid = p_config.event_table AND e.attname = 'pgh_obj_id' AND NOT e.attisdropped) THEN
        PERFORM pghistory._convert_event_column(p_config.event_table, 'pgh_obj_id', v_key_type, '', p_tracked);
    END IF;
END
$$;

-- Refuses an event table that lost a column (of p_had, the columns it had
-- before the command) its tracked table's events are written to: renamed
-- or dropped by ALTER TABLE on the event table.
CREATE OR REPLACE FUNCTION pghistory._check_event_table(p_config pghistory.tracked, p_had text[])
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_missing text;
BEGIN
    SELECT string_agg(quote_ident(c.name), ', ' ORDER BY c.ord) INTO v_missing
      FROM unnest(ARRAY['pgh_id', 'pgh_created_at', 'pgh_label', 'pgh_obj_id']
                  || CASE WHEN p_config.context IN ('fk', 'json') THEN ARRAY['pgh_context_id'] ELSE '{}' END
                  || CASE WHEN p_config.context = 'json' THEN ARRAY['pgh_context'] ELSE '{}' END
                  || ARRAY(SELECT t.column_name::text FROM pghistory._tracked_columns(
                               p_config.tracked_table, p_config.fields, p_config.exclude) AS t))
           WITH ORDINALITY AS c(name, ord)
     WHERE c.name = ANY (p_had)
       AND NOT EXISTS (SELECT FROM pg_catalog.pg_attribute AS a
                        WHERE a.attrelid = p_config.event_table AND a.attname = c.name
                          AND a.attnum > 0 AND NOT a.attisdropped);
    IF v_missing IS NOT NULL THEN
        RAISE EXCEPTION 'pghistory: % is the event table of %, whose events need its column %',
                pghistory._qualified_name(p_config.event_table), pghistory._qualified_name(p_config.tracked_table),
                v_missing
            USING ERRCODE = 'dependent_objects_still_exist',
                  HINT = 'Columns that receive history cannot be renamed or dropped while the table is tracked: '
                         'stop tracking the column first (track() with fields or exclude), or untrack the table.';
    END IF;
END
$$;
