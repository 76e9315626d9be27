
-- ---------------------------------------------------------------------------
-- identity.sql: a tracked row's object identity (pgh_obj_id), as the
-- time-travel functions read and compare it
-- ---------------------------------------------------------------------------

-- The SQL expression of the object identity of row p_alias of p_tracked,
-- in the type of its event table's pgh_obj_id: the primary key column, or
-- for a composite key the key as a JSON array in key order, as text
-- ('[1, "a"]': jsonb's output, so one key has one spelling). NULL when the
-- table has no primary key.
CREATE OR REPLACE FUNCTION pghistory._object_key(p_tracked regclass, p_alias text)
RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN count(*) = 1 THEN min(p_alias || '.' || pghistory._quoted(k.column_name))
                WHEN count(*) > 1
                THEN format('pg_catalog.jsonb_build_array(%s)::text',
                            string_agg(p_alias || '.' || pghistory._quoted(k.column_name), ', ' ORDER BY k.n)) END
      FROM pghistory._key_columns(p_tracked) WITH ORDINALITY AS k(column_name, column_type, n)
$$;

-- The type pgh_obj_id has in the event table of p_tracked: that of a
-- single-column primary key, text otherwise (a composite key's JSON array;
-- NULL for a table without a key).
CREATE OR REPLACE FUNCTION pghistory._object_key_type(p_tracked regclass)
RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN count(*) = 1 THEN min(k.column_type) ELSE 'text' END
      FROM pghistory._key_columns(p_tracked) AS k
$$;

-- A condition that holds for the row p_alias of p_tracked whose identity
-- is p_obj_id (an SQL expression of type text, as _canonical_obj_id()
-- returns it), written on the key columns so that it uses the primary
-- key's index: alias.id = $1::integer, or (alias.a, alias.b) =
-- (($1::jsonb ->> 0)::integer, ($1::jsonb ->> 1)::text).
CREATE OR REPLACE FUNCTION pghistory._object_match(p_tracked regclass, p_alias text, p_obj_id text)
RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN count(*) = 1
                THEN format('%s.%s = (%s)::%s', p_alias, pghistory._quoted(min(k.column_name)), p_obj_id, min(k.column_type))
                WHEN count(*) > 1
                THEN format('(%s) = (%s)',
                            string_agg(p_alias || '.' || pghistory._quoted(k.column_name), ', ' ORDER BY k.n),
                            string_agg(format('((%s)::jsonb ->> %s)::%s', p_obj_id, k.n - 1, k.column_type), ', '
                                       ORDER BY k.n)) END
      FROM pghistory._key_columns(p_tracked) WITH ORDINALITY AS k(column_name, column_type, n)
$$;

-- The type of an event table's pgh_obj_id, as format_type() spells it.
CREATE OR REPLACE FUNCTION pghistory._obj_id_type(p_event_table regclass)
RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT format_type(a.atttypid, a.atttypmod)
      FROM pg_catalog.pg_attribute AS a
     WHERE a.attrelid = p_event_table AND a.attname = 'pgh_obj_id' AND NOT a.attisdropped
$$;

-- The registry row of a table a time-travel function (p_function names it
-- in messages) reads history for. Refuses untracked tables and tables
-- without an object identity.
CREATE OR REPLACE FUNCTION pghistory._time_travel_config(p_table regclass, p_function text)
RETURNS pghistory.tracked
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_config pghistory.tracked;
BEGIN
    SELECT * INTO v_config FROM pghistory.tracked AS t WHERE t.tracked_table = p_table;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'pghistory: % is not tracked', pghistory._qualified_name(p_table)
            USING ERRCODE = 'undefined_object',
                  HINT = format('%s reads the history of a tracked table: SELECT pghistory.track(%L) first.',
                                p_function, p_table::text);
    END IF;
    IF pghistory._object_key(p_table, 'r') IS NULL THEN
        RAISE EXCEPTION 'pghistory: % has no primary key, so % cannot tell its rows apart',
                pghistory._qualified_name(p_table), p_function
            USING ERRCODE = 'feature_not_supported',
                  HINT = 'Add a primary key to the table; events recorded from then on name their row.';
    END IF;
    RETURN v_config;
END
$$;

-- Refuses a table whose history does not hold every state of every row:
-- an event table that lacks some column (fields/exclude), or trackers that
-- leave some change unrecorded (no insert, update storing the new row,
-- delete or truncate tracker without condition and changed). p_function
-- names the caller in the message.
CREATE OR REPLACE FUNCTION pghistory._require_full_history(p_config pghistory.tracked, p_function text)
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_missing text;
BEGIN
    SELECT string_agg(format('%I', a.attname), ', ' ORDER BY a.attnum) INTO v_missing
      FROM pg_catalog.pg_attribute AS a
     WHERE a.attrelid = p_config.tracked_table AND a.attnum > 0 AND NOT a.attisdropped
       AND (a.attname NOT IN (SELECT c.column_name FROM pghistory._tracked_columns(
                                  p_config.tracked_table, p_config.fields, p_config.exclude) AS c)
            OR NOT EXISTS (SELECT FROM pg_catalog.pg_attribute AS e
                            WHERE e.attrelid = p_config.event_table AND e.attname = a.attname AND NOT e.attisdropped));
    IF v_missing IS NOT NULL THEN
        RAISE EXCEPTION 'pghistory: % does not record every column of % (not: %), so % cannot rebuild its rows',
                pghistory._qualified_name(p_config.event_table), pghistory._qualified_name(p_config.tracked_table),
                v_missing, p_function
            USING ERRCODE = 'feature_not_supported',
                  HINT = format('%s needs the table tracked without fields or exclude.', p_function);
    END IF;
    SELECT string_agg(o.operation, ', ' ORDER BY o.ord) INTO v_missing
      FROM unnest(ARRAY['insert', 'update', 'delete', 'truncate']) WITH ORDINALITY AS o(operation, ord)
     WHERE NOT EXISTS (SELECT FROM unnest(p_config.trackers) AS k
                        WHERE k.operation = o.operation AND k.condition IS NULL AND k.changed IS NULL
                          AND (k.operation <> 'update' OR k.snapshot = 'new'));
    IF v_missing IS NOT NULL THEN
        RAISE EXCEPTION 'pghistory: the trackers of % do not record every change (missing: %), so % cannot rebuild its rows',
                pghistory._qualified_name(p_config.tracked_table), v_missing, p_function
            USING ERRCODE = 'feature_not_supported',
                  HINT = 'Track it with the default trackers, or add insert_event(), update_event(), delete_event() '
                         'and truncate_event() without condition or changed.';
    END IF;
END
$$;

-- A CASE expression over p_label_expression that holds when the label is
-- that of a baseline: a snapshot that changed nothing (backfill(),
-- create_event() of a manual_event), unlike the events of insert, update,
-- delete and truncate trackers.
CREATE OR REPLACE FUNCTION pghistory._baseline_expression(p_trackers pghistory.tracker[], p_label_expression text)
RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT format('(%s <> ALL (%L::text[]))', p_label_expression,
                  ARRAY['insert', 'update', 'delete', 'truncate']
                  || ARRAY(SELECT k.label FROM unnest(p_trackers) AS k WHERE k.operation <> 'manual'))
$$;

-- p_obj_id, an object identity given by a caller, spelt as p_event_table
-- stores it: a single-column key's value in its type's text ('01' is
-- '1'), a composite key's JSON array rebuilt from its elements cast to the
-- key columns' types ('["1","a"]' is '[1, "a"]'). p_table (tracked or
-- event table) names the table in messages and gives the key columns.
-- Refuses NULL and values that are no key of the table.
CREATE OR REPLACE FUNCTION pghistory._canonical_obj_id(p_event_table regclass, p_table regclass, p_obj_id text)
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_type text := pghistory._obj_id_type(p_event_table);
    v_tracked regclass := coalesce((SELECT t.tracked_table FROM pghistory.tracked AS t
                                     WHERE t.event_table = p_event_table), p_table);
    v_columns text;
    v_elements text;
    v_count integer;
    v_json jsonb;
    v_result text;
BEGIN
    IF p_obj_id IS NULL THEN
        RAISE EXCEPTION 'pghistory: obj_id must not be NULL'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'obj_id is the value of the row''s primary key.';
    END IF;
    SELECT count(*), string_agg(format('%I', k.column_name), ', ' ORDER BY k.n),
           string_agg(format('($1 ->> %s)::%s', k.n - 1, k.column_type), ', ' ORDER BY k.n)
      INTO v_count, v_columns, v_elements
      FROM pghistory._key_columns(v_tracked) WITH ORDINALITY AS k(column_name, column_type, n);
    BEGIN
        IF v_count > 1 AND v_type = 'text' THEN
            v_json := p_obj_id::jsonb;
            IF jsonb_typeof(v_json) = 'array' AND jsonb_array_length(v_json) = v_count THEN
                EXECUTE format('SELECT pg_catalog.jsonb_build_array(%s)::text', v_elements) INTO v_result USING v_json;
            END IF;
        ELSE
            EXECUTE format('SELECT $1::%s::text', v_type) INTO v_result USING p_obj_id;
        END IF;
    EXCEPTION WHEN data_exception THEN
        v_result := NULL;
    END;
    IF v_result IS NULL AND v_count > 1 AND v_type = 'text' THEN
        RAISE EXCEPTION 'pghistory: obj_id % is not a valid key of % (a JSON array of %)', quote_literal(p_obj_id),
                pghistory._qualified_name(p_table), v_columns
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = format('The identity of a row of a table with a composite primary key is its key as a '
                                'JSON array, in key order: ''[%s]''.', v_columns);
    ELSIF v_result IS NULL THEN
        RAISE EXCEPTION 'pghistory: obj_id % is not a valid key of % (%)', quote_literal(p_obj_id),
                pghistory._qualified_name(p_table), v_type
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'obj_id is the value of the row''s primary key.';
    END IF;
    RETURN v_result;
END
$$;

-- Refuses a caller who may not read p_table's history (SELECT on its
-- event table and USAGE on that table's schema).
CREATE OR REPLACE FUNCTION pghistory._check_history_readable(p_config pghistory.tracked)
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT (has_table_privilege(p_config.event_table, 'SELECT')
            AND has_schema_privilege((SELECT c.relnamespace FROM pg_catalog.pg_class AS c
                                       WHERE c.oid = p_config.event_table), 'USAGE')) THEN
        RAISE EXCEPTION 'pghistory: permission denied for the history in %', pghistory._qualified_name(p_config.event_table)
            USING ERRCODE = 'insufficient_privilege',
                  HINT = format('Reading history needs SELECT on its event table (and USAGE on its schema): '
                                'GRANT SELECT ON %s TO %I.', p_config.event_table, current_user);
    END IF;
END
$$;
