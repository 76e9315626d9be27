
-- ---------------------------------------------------------------------------
-- redact.sql: erasure (GDPR): an object's values replaced by NULL in every
-- one of its events, and the record that it happened
-- ---------------------------------------------------------------------------

-- Records a redaction. Refuses a session user without the rights of the
-- event table's owner (_check_event_table_owner()). SECURITY DEFINER (only the extension's owner writes
-- pghistory.redaction); EXECUTE stays with PUBLIC: it records only what the
-- owner did through redact().
CREATE OR REPLACE FUNCTION pghistory._record_redaction(p_event_table regclass, p_obj_id text, p_columns text[],
                                                       p_context_keys text[], p_events bigint)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM pghistory._check_event_table_owner(p_event_table, 'record a redaction of its history');
    INSERT INTO pghistory.redaction (event_table, obj_id, columns, context_keys, events)
    VALUES (p_event_table, p_obj_id, p_columns, coalesce(p_context_keys, '{}'), p_events);
END
$$;

-- Replaces the values of columns (NULL: every tracked column but the
-- object's key) by NULL in every event of object obj_id, and removes the
-- context_keys from the metadata of its events: in the events themselves
-- (context 'json') and in the context rows they point at (context 'fk',
-- which only roles that may update pghistory.context can change). The
-- diffs of other columns stay as they were. Records the redaction in
-- pghistory.redaction. Refuses roles that do not own the event table,
-- unknown or pghistory's own columns, all before anything is written.
-- Returns the number of events redacted.
CREATE OR REPLACE FUNCTION pghistory.redact(tbl regclass, obj_id text, columns text[] DEFAULT NULL,
                                            context_keys text[] DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_event_table regclass := pghistory._owned_history(redact.tbl, 'redact');
    v_tracked regclass := (SELECT t.tracked_table FROM pghistory.tracked AS t
                            WHERE t.event_table = pghistory._history_of(redact.tbl));
    v_key name;
    v_columns text[];
    v_bad text;
    v_obj_type text;
    v_has_json boolean;
    v_contexts uuid[] := '{}'::uuid[];
    v_events bigint;
    v_before text;
BEGIN
    IF redact.obj_id IS NULL THEN
        RAISE EXCEPTION 'pghistory: redact() needs the obj_id of the object to erase'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF v_tracked IS NOT NULL THEN
        v_key := (SELECT k.column_name FROM pghistory._primary_key(v_tracked) AS k);
    END IF;
    v_columns := coalesce(redact.columns, ARRAY(
        SELECT a.attname::text FROM pg_catalog.pg_attribute AS a
         WHERE a.attrelid = v_event_table AND a.attnum > 0 AND NOT a.attisdropped
           AND a.attname NOT LIKE 'pgh\_%' AND a.attname IS DISTINCT FROM v_key
         ORDER BY a.attnum));
    SELECT string_agg(format('%I', c), ', ') INTO v_bad
      FROM unnest(v_columns) AS c
     WHERE c LIKE 'pgh\_%' OR c = v_key
        OR NOT EXISTS (SELECT FROM pg_catalog.pg_attribute AS a
                        WHERE a.attrelid = v_event_table AND a.attname = c AND a.attnum > 0 AND NOT a.attisdropped);
    IF v_bad IS NOT NULL THEN
        RAISE EXCEPTION 'pghistory: % cannot redact column %', v_event_table, v_bad
            USING ERRCODE = 'undefined_column',
                  HINT = 'Name tracked columns of the event table; pghistory''s own columns and the object''s key stay.';
    END IF;
    SELECT format_type(a.atttypid, a.atttypmod) INTO v_obj_type
      FROM pg_catalog.pg_attribute AS a WHERE a.attrelid = v_event_table AND a.attname = 'pgh_obj_id';
    v_has_json := EXISTS (SELECT FROM pg_catalog.pg_attribute AS a
                           WHERE a.attrelid = v_event_table AND a.attname = 'pgh_context' AND NOT a.attisdropped);
    IF cardinality(redact.context_keys) > 0 AND EXISTS (
            SELECT FROM pg_catalog.pg_attribute AS a
             WHERE a.attrelid = v_event_table AND a.attname = 'pgh_context_id' AND NOT a.attisdropped) THEN
        EXECUTE format('SELECT coalesce(array_agg(DISTINCT pgh_context_id), ''{}'') FROM %s '
                       'WHERE pgh_obj_id = %L::%s AND pgh_context_id IS NOT NULL', v_event_table, redact.obj_id, v_obj_type)
            INTO v_contexts;
        IF cardinality(v_contexts) > 0 AND NOT v_has_json
           AND NOT has_table_privilege('pghistory.context', 'UPDATE') THEN
            RAISE EXCEPTION 'pghistory: the context keys of % live in pghistory.context, which % may not change',
                    v_event_table, quote_ident(current_user)
                USING ERRCODE = 'insufficient_privilege',
                      HINT = 'Have the extension''s owner (or a superuser) run redact() with context_keys, '
                             'or redact the columns alone.';
        END IF;
    END IF;

    v_before := pghistory._allow_history_changes('on');
    EXECUTE format('UPDATE %s SET %s WHERE pgh_obj_id = %L::%s', v_event_table,
                   concat_ws(', ',
                             (SELECT string_agg(format('%I = NULL', c), ', ') FROM unnest(v_columns) AS c),
                             CASE WHEN v_has_json AND cardinality(redact.context_keys) > 0
                                  THEN format('pgh_context = pgh_context - %L::text[]', redact.context_keys) END,
                             CASE WHEN cardinality(v_columns) = 0 THEN 'pgh_obj_id = pgh_obj_id' END),
                   redact.obj_id, v_obj_type);
    GET DIAGNOSTICS v_events = ROW_COUNT;
    PERFORM pghistory._allow_history_changes(v_before);
    IF cardinality(v_contexts) > 0 AND has_table_privilege('pghistory.context', 'UPDATE') THEN
        UPDATE pghistory.context AS c SET metadata = c.metadata - redact.context_keys
         WHERE c.id = ANY (v_contexts) AND c.metadata ?| redact.context_keys;
    END IF;
    PERFORM pghistory._record_redaction(v_event_table, redact.obj_id, v_columns, redact.context_keys, v_events);
    RETURN v_events;
END
$$;
COMMENT ON FUNCTION pghistory.redact(regclass, text, text[], text[]) IS
    'pghistory: erase an object''s values (NULL) in every one of its events, and context metadata keys; '
    'recorded in pghistory.redaction; for the event table''s owner only. Returns the events redacted';

-- redact() with the object's key as the tracked table types it.
CREATE OR REPLACE FUNCTION pghistory.redact(tbl regclass, obj_id anyelement, columns text[] DEFAULT NULL,
                                            context_keys text[] DEFAULT NULL)
RETURNS bigint
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT pghistory.redact(tbl, obj_id::text, columns, context_keys)
$$;
COMMENT ON FUNCTION pghistory.redact(regclass, anyelement, text[], text[]) IS
    'pghistory: erase an object''s values in its events (see redact(regclass, text, text[], text[]))';
