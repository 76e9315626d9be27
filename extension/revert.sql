
-- ---------------------------------------------------------------------------
-- revert.sql: putting a row back as an event recorded it
-- ---------------------------------------------------------------------------

-- Puts the tracked row back as event pgh_id of event_table recorded it:
-- updates the row with that primary key, or inserts it again when it was
-- deleted. The write goes through the table's triggers, so the revert is
-- itself recorded, under the current context. Runs with the caller's
-- rights. Returns the pgh_id of the event the revert wrote (the last one,
-- when several trackers fired), or NULL when nothing was recorded: the row
-- already matched the snapshot (nothing is written then), or no tracker
-- records such a change.
-- Refuses event tables of untracked tables, event tables that do not
-- record every column of the table (fields/exclude), tables without a
-- single-column primary key, unknown pgh_ids, snapshots holding a value
-- for a column dropped since, and snapshots a constraint now rejects.
CREATE OR REPLACE FUNCTION pghistory.revert(event_table regclass, pgh_id bigint)
RETURNS bigint
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_tracked regclass;
    v_other regclass;
    v_fields text[];
    v_exclude text[];
    v_pk record;
    v_missing text;
    v_columns text[];      -- the table's columns, all recorded
    v_settable text[];     -- those an UPDATE may set
    v_insertable text[];   -- those an INSERT may set
    v_dropped text[];      -- recorded columns the table no longer has
    v_obj_id text;
    v_exists boolean;
    v_before bigint;
    v_written bigint;
    v_failure text;
    v_state text;
    v_message text;
    v_detail text;
BEGIN
    SELECT t.tracked_table, t.fields, t.exclude INTO v_tracked, v_fields, v_exclude
      FROM pghistory.tracked AS t WHERE t.event_table = revert.event_table;
    IF NOT FOUND THEN
        SELECT t.event_table INTO v_other FROM pghistory.tracked AS t WHERE t.tracked_table = revert.event_table;
        IF FOUND THEN
            RAISE EXCEPTION 'pghistory: % is a tracked table; revert() takes its event table, %',
                    revert.event_table, v_other
                USING ERRCODE = 'wrong_object_type',
                      HINT = 'Pass the event table and the pgh_id of the event to go back to.';
        END IF;
        RAISE EXCEPTION 'pghistory: % is not the event table of a tracked table', revert.event_table
            USING ERRCODE = 'undefined_object',
                  HINT = 'revert() writes through the triggers of a tracked table; track the table again '
                         'to put rows back from history kept after untrack().';
    END IF;

    SELECT * INTO v_pk FROM pghistory._primary_key(v_tracked);
    IF NOT FOUND THEN
        RAISE EXCEPTION 'pghistory: % has no single-column primary key, so revert() cannot tell which row an event is about',
                v_tracked
            USING ERRCODE = 'feature_not_supported',
                  HINT = 'Add a primary key to the table; events recorded from then on can be reverted.';
    END IF;

    -- every column of the table must be in the snapshots
    SELECT string_agg(format('%I', a.attname), ', ' ORDER BY a.attnum) INTO v_missing
      FROM pg_catalog.pg_attribute AS a
     WHERE a.attrelid = v_tracked AND a.attnum > 0 AND NOT a.attisdropped
       AND (a.attname NOT IN (SELECT c.column_name FROM pghistory._tracked_columns(v_tracked, v_fields, v_exclude) AS c)
            OR NOT EXISTS (SELECT FROM pg_catalog.pg_attribute AS e
                            WHERE e.attrelid = revert.event_table AND e.attname = a.attname AND NOT e.attisdropped));
    IF v_missing IS NOT NULL THEN
        RAISE EXCEPTION 'pghistory: % does not record every column of % (not: %), so its events cannot put a row back',
                revert.event_table, v_tracked, v_missing
            USING ERRCODE = 'feature_not_supported',
                  HINT = 'revert() needs the table tracked without fields or exclude.';
    END IF;
    SELECT array_agg(a.attname::text ORDER BY a.attnum),
           array_agg(a.attname::text ORDER BY a.attnum)
               FILTER (WHERE a.attgenerated = '' AND a.attidentity <> 'a' AND a.attname <> v_pk.column_name),
           array_agg(a.attname::text ORDER BY a.attnum) FILTER (WHERE a.attgenerated = '')
      INTO v_columns, v_settable, v_insertable
      FROM pg_catalog.pg_attribute AS a
     WHERE a.attrelid = v_tracked AND a.attnum > 0 AND NOT a.attisdropped;
    v_dropped := ARRAY(SELECT e.attname::text FROM pg_catalog.pg_attribute AS e
                        WHERE e.attrelid = revert.event_table AND e.attnum > 0 AND NOT e.attisdropped
                          AND e.attname NOT LIKE 'pgh\_%' AND e.attname <> ALL (v_columns)
                        ORDER BY e.attnum);

    EXECUTE format('SELECT pgh_row.pgh_obj_id::text, %s FROM %s AS pgh_row WHERE pgh_row.pgh_id = $1',
                   coalesce((SELECT string_agg(format('pgh_row.%I IS NOT NULL', d), ' OR ') FROM unnest(v_dropped) AS d),
                            'false'),
                   revert.event_table)
       INTO v_obj_id, v_exists USING revert.pgh_id;
    IF v_exists IS NULL THEN
        RAISE EXCEPTION 'pghistory: % has no event with pgh_id %', revert.event_table, coalesce(revert.pgh_id::text, 'NULL')
            USING ERRCODE = 'no_data_found',
                  HINT = format('SELECT pgh_id, pgh_label, pgh_data FROM pghistory.events(%L) lists its events.',
                                revert.event_table::text);
    END IF;
    v_failure := format('pghistory: cannot revert %s to event %s of %s', v_tracked, revert.pgh_id, revert.event_table);
    IF v_obj_id IS NULL THEN
        RAISE EXCEPTION '%: the event has no pgh_obj_id (it was recorded while the table had no single-column primary key)',
                v_failure
            USING ERRCODE = 'feature_not_supported';
    END IF;
    IF v_exists THEN
        -- which dropped column holds a value: name it
        EXECUTE format('SELECT %s FROM %s AS pgh_row WHERE pgh_row.pgh_id = $1',
                       (SELECT format('concat_ws(%L, %s)', ', ',
                                      string_agg(format('CASE WHEN pgh_row.%1$I IS NOT NULL THEN %2$L END', d, quote_ident(d)), ', '))
                          FROM unnest(v_dropped) AS d),
                       revert.event_table)
           INTO v_missing USING revert.pgh_id;
        RAISE EXCEPTION '%: it holds a value for %, which % no longer has', v_failure,
                CASE WHEN v_missing LIKE '%,%' THEN 'columns ' ELSE 'column ' END || v_missing, v_tracked
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Add the column back first, or copy the values you need from the event table by hand.';
    END IF;

    -- lock the row (when it exists) so that the events the revert writes
    -- are the only ones for it from here on
    EXECUTE format('SELECT true FROM %s AS t WHERE t.%I = $1::%s FOR UPDATE', v_tracked, v_pk.column_name, v_pk.column_type)
       INTO v_exists USING v_obj_id;
    v_exists := coalesce(v_exists, false);
    EXECUTE format('SELECT max(e.pgh_id) FROM %s AS e', revert.event_table) INTO v_before;

    BEGIN
        IF v_exists AND cardinality(v_settable) > 0 THEN
            EXECUTE format('UPDATE %1$s AS t SET (%2$s) = ROW(%3$s) FROM %4$s AS pgh_row '
                           'WHERE pgh_row.pgh_id = $1 AND t.%5$I = pgh_row.pgh_obj_id AND %6$s',
                           v_tracked,
                           array_to_string(ARRAY(SELECT format('%I', c) FROM unnest(v_settable) AS c), ', '),
                           array_to_string(ARRAY(SELECT format('pgh_row.%I', c) FROM unnest(v_settable) AS c), ', '),
                           revert.event_table, v_pk.column_name,
                           pghistory._changed_expression(v_tracked, v_columns, 't', 'pgh_row'))
               USING revert.pgh_id;
        ELSIF NOT v_exists THEN
            EXECUTE format('INSERT INTO %1$s AS t (%2$s) OVERRIDING SYSTEM VALUE SELECT %3$s FROM %4$s AS pgh_row '
                           'WHERE pgh_row.pgh_id = $1',
                           v_tracked,
                           array_to_string(ARRAY(SELECT format('%I', c) FROM unnest(v_insertable) AS c), ', '),
                           array_to_string(ARRAY(SELECT format('pgh_row.%I', c) FROM unnest(v_insertable) AS c), ', '),
                           revert.event_table)
               USING revert.pgh_id;
        END IF;
    EXCEPTION WHEN integrity_constraint_violation OR data_exception OR datatype_mismatch THEN
        GET STACKED DIAGNOSTICS v_state = RETURNED_SQLSTATE, v_message = MESSAGE_TEXT, v_detail = PG_EXCEPTION_DETAIL;
        RAISE EXCEPTION '%: %', v_failure, v_message
            USING ERRCODE = v_state, DETAIL = v_detail,
                  HINT = 'The snapshot no longer fits the table as it is now; change the conflicting data '
                         'first, or revert to another event.';
    END;

    EXECUTE format('SELECT max(e.pgh_id) FROM %s AS e WHERE e.pgh_id > $1 AND e.pgh_obj_id = $2::%s',
                   revert.event_table, v_pk.column_type)
       INTO v_written USING coalesce(v_before, 0), v_obj_id;
    RETURN v_written;
END
$$;
COMMENT ON FUNCTION pghistory.revert(regclass, bigint) IS
    'pghistory: puts the tracked row back as event pgh_id of event_table recorded it, through the table''s triggers; returns the pgh_id of the event that wrote, or NULL when nothing changed';
