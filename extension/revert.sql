
-- ---------------------------------------------------------------------------
-- revert.sql: putting a row back as an event recorded it
-- ---------------------------------------------------------------------------

-- The tracked table whose event table p_event_table is, for revert().
-- Refuses a tracked table given in place of its event table, and tables
-- that are not the event table of a tracked table. Returns the table.
CREATE OR REPLACE FUNCTION pghistory._revert_tracked_table(p_event_table regclass)
RETURNS regclass
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_tracked regclass;
    v_other regclass;
BEGIN
    SELECT t.tracked_table INTO v_tracked FROM pghistory.tracked AS t WHERE t.event_table = p_event_table;
    IF FOUND THEN
        RETURN v_tracked;
    END IF;
    SELECT t.event_table INTO v_other FROM pghistory.tracked AS t WHERE t.tracked_table = p_event_table;
    IF FOUND THEN
        RAISE EXCEPTION 'pghistory: % is a tracked table; revert() takes its event table, %',
                p_event_table, v_other
            USING ERRCODE = 'wrong_object_type',
                  HINT = 'Pass the event table and the pgh_id of the event to go back to.';
    END IF;
    RAISE EXCEPTION 'pghistory: % is not the event table of a tracked table', p_event_table
        USING ERRCODE = 'undefined_object',
              HINT = 'revert() writes through the triggers of a tracked table; track the table again '
                     'to put rows back from history kept after untrack().';
END
$$;

-- The columns revert() works with, once it has checked that the snapshots
-- of p_event_table can put a row of p_tracked back: the table has a
-- primary key (the object identity, see identity.sql) and every column of
-- it is recorded. columns: the table's columns; settable: those an UPDATE may
-- set; insertable: those an INSERT may set; dropped: recorded columns the
-- table no longer has. Refuses tables without such a key and event tables
-- that do not record every column (fields/exclude).
CREATE OR REPLACE FUNCTION pghistory._revert_columns(p_tracked regclass, p_event_table regclass,
    OUT columns text[], OUT settable text[], OUT insertable text[],
    OUT dropped text[])
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_config pghistory.tracked;
    v_missing text;
BEGIN
    IF pghistory._object_key(p_tracked, 't') IS NULL THEN
        RAISE EXCEPTION 'pghistory: % has no primary key, so revert() cannot tell which row an event is about',
                p_tracked
            USING ERRCODE = 'feature_not_supported',
                  HINT = 'Add a primary key to the table; events recorded from then on can be reverted.';
    END IF;
    -- every column of the table must be in the snapshots
    SELECT * INTO v_config FROM pghistory.tracked AS t WHERE t.tracked_table = p_tracked;
    SELECT string_agg(format('%I', a.attname), ', ' ORDER BY a.attnum) INTO v_missing
      FROM pg_catalog.pg_attribute AS a
     WHERE a.attrelid = p_tracked AND a.attnum > 0 AND NOT a.attisdropped
       AND (a.attname NOT IN (SELECT c.column_name
                                FROM pghistory._tracked_columns(p_tracked, v_config.fields, v_config.exclude) AS c)
            OR NOT EXISTS (SELECT FROM pg_catalog.pg_attribute AS e
                            WHERE e.attrelid = p_event_table AND e.attname = a.attname AND NOT e.attisdropped));
    IF v_missing IS NOT NULL THEN
        RAISE EXCEPTION 'pghistory: % does not record every column of % (not: %), so its events cannot put a row back',
                p_event_table, p_tracked, v_missing
            USING ERRCODE = 'feature_not_supported',
                  HINT = 'revert() needs the table tracked without fields or exclude.';
    END IF;
    SELECT array_agg(a.attname::text ORDER BY a.attnum),
           array_agg(a.attname::text ORDER BY a.attnum)
               FILTER (WHERE a.attgenerated = '' AND a.attidentity <> 'a'
                         AND a.attname NOT IN (SELECT k.column_name FROM pghistory._key_columns(p_tracked) AS k)),
           array_agg(a.attname::text ORDER BY a.attnum) FILTER (WHERE a.attgenerated = '')
      INTO columns, settable, insertable
      FROM pg_catalog.pg_attribute AS a
     WHERE a.attrelid = p_tracked AND a.attnum > 0 AND NOT a.attisdropped;
    dropped := ARRAY(SELECT e.attname::text FROM pg_catalog.pg_attribute AS e
                      WHERE e.attrelid = p_event_table AND e.attnum > 0 AND NOT e.attisdropped
                        AND e.attname NOT LIKE 'pgh\_%' AND e.attname <> ALL (columns)
                      ORDER BY e.attnum);
END
$$;

-- The pgh_obj_id of event p_pgh_id of p_event_table, once revert() has
-- checked that the event can put its row back. p_dropped: the recorded
-- columns the table no longer has (_revert_columns). Refuses unknown
-- pgh_ids, events without a pgh_obj_id and events holding a value for a
-- dropped column. Returns the pgh_obj_id, as text.
CREATE OR REPLACE FUNCTION pghistory._revert_object(p_tracked regclass, p_event_table regclass, p_pgh_id bigint,
                                                    p_dropped text[])
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_obj_id text;
    v_holds boolean;
    v_holding text;
    v_failure text := format('pghistory: cannot revert %s to event %s of %s', p_tracked, p_pgh_id, p_event_table);
BEGIN
    EXECUTE format('SELECT pgh_row.pgh_obj_id::text, %s FROM %s AS pgh_row WHERE pgh_row.pgh_id = $1',
                   coalesce((SELECT string_agg(format('pgh_row.%I IS NOT NULL', d), ' OR ') FROM unnest(p_dropped) AS d),
                            'false'),
                   p_event_table)
       INTO v_obj_id, v_holds USING p_pgh_id;
    IF v_holds IS NULL THEN
        RAISE EXCEPTION 'pghistory: % has no event with pgh_id %', p_event_table, coalesce(p_pgh_id::text, 'NULL')
            USING ERRCODE = 'no_data_found',
                  HINT = format('SELECT pgh_id, pgh_label, pgh_data FROM pghistory.events(%L) lists its events.',
                                p_event_table::text);
    END IF;
    IF v_obj_id IS NULL THEN
        RAISE EXCEPTION '%: the event has no pgh_obj_id (it was recorded while the table had no primary key)',
                v_failure
            USING ERRCODE = 'feature_not_supported';
    END IF;
    IF v_holds THEN
        -- which dropped column holds a value: name it
        EXECUTE format('SELECT %s FROM %s AS pgh_row WHERE pgh_row.pgh_id = $1',
                       (SELECT format('concat_ws(%L, %s)', ', ',
                                      string_agg(format('CASE WHEN pgh_row.%1$I IS NOT NULL THEN %2$L END', d, quote_ident(d)), ', '))
                          FROM unnest(p_dropped) AS d),
                       p_event_table)
           INTO v_holding USING p_pgh_id;
        RAISE EXCEPTION '%: it holds a value for %, which % no longer has', v_failure,
                CASE WHEN v_holding LIKE '%,%' THEN 'columns ' ELSE 'column ' END || v_holding, p_tracked
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Add the column back first, or copy the values you need from the event table by hand.';
    END IF;
    RETURN v_obj_id;
END
$$;

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
-- primary key, unknown pgh_ids, snapshots holding a value
-- for a column dropped since, and snapshots a constraint now rejects.
CREATE OR REPLACE FUNCTION pghistory.revert(event_table regclass, pgh_id bigint)
RETURNS bigint
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_tracked regclass := pghistory._revert_tracked_table(revert.event_table);
    v_cols record;
    v_obj_id text;
    v_exists boolean;
    v_before bigint;
    v_written bigint;
    v_state text;
    v_message text;
    v_detail text;
BEGIN
    SELECT * INTO v_cols FROM pghistory._revert_columns(v_tracked, revert.event_table);
    v_obj_id := pghistory._revert_object(v_tracked, revert.event_table, revert.pgh_id, v_cols.dropped);

    -- lock the row (when it exists) so that the events the revert writes
    -- are the only ones for it from here on
    EXECUTE format('SELECT true FROM %s AS t WHERE %s FOR UPDATE', v_tracked, pghistory._object_match(v_tracked, 't', '$1'))
       INTO v_exists USING v_obj_id;
    v_exists := coalesce(v_exists, false);
    -- the object's last event (an index probe), so that only it is compared
    -- with the events the revert writes (also where Citus numbers events by node)
    EXECUTE format('SELECT max(e.pgh_id) FROM %s AS e WHERE e.pgh_obj_id = $1::%s%s', revert.event_table,
                   pghistory._obj_id_type(revert.event_table),
                   pghistory._citus_shard_filter(revert.event_table, 'e', '$1'))
       INTO v_before USING v_obj_id;

    BEGIN
        IF v_exists AND cardinality(v_cols.settable) > 0 THEN
            EXECUTE format('UPDATE %1$s AS t SET (%2$s) = ROW(%3$s) FROM %4$s AS pgh_row '
                           'WHERE pgh_row.pgh_id = $1 AND %5$s AND %6$s%7$s',
                           v_tracked,
                           array_to_string(ARRAY(SELECT format('%I', c) FROM unnest(v_cols.settable) AS c), ', '),
                           array_to_string(ARRAY(SELECT format('pgh_row.%I', c) FROM unnest(v_cols.settable) AS c), ', '),
                           revert.event_table, pghistory._object_match(v_tracked, 't', '$2'),
                           pghistory._changed_expression(v_tracked, v_cols.columns, 't', 'pgh_row'),
                           pghistory._citus_same_shard(revert.event_table, 'pgh_row', 't'))
               USING revert.pgh_id, v_obj_id;
        ELSIF NOT v_exists THEN
            EXECUTE format('INSERT INTO %1$s AS t (%2$s) OVERRIDING SYSTEM VALUE SELECT %3$s FROM %4$s AS pgh_row '
                           'WHERE pgh_row.pgh_id = $1',
                           v_tracked,
                           array_to_string(ARRAY(SELECT format('%I', c) FROM unnest(v_cols.insertable) AS c), ', '),
                           array_to_string(ARRAY(SELECT format('pgh_row.%I', c) FROM unnest(v_cols.insertable) AS c), ', '),
                           revert.event_table)
               USING revert.pgh_id;
        END IF;
    EXCEPTION WHEN integrity_constraint_violation OR data_exception OR datatype_mismatch THEN
        GET STACKED DIAGNOSTICS v_state = RETURNED_SQLSTATE, v_message = MESSAGE_TEXT, v_detail = PG_EXCEPTION_DETAIL;
        RAISE EXCEPTION 'pghistory: cannot revert % to event % of %: %', v_tracked, revert.pgh_id,
                revert.event_table, v_message
            USING ERRCODE = v_state, DETAIL = v_detail,
                  HINT = 'The snapshot no longer fits the table as it is now; change the conflicting data '
                         'first, or revert to another event.';
    END;

    EXECUTE format('SELECT max(e.pgh_id) FROM %s AS e WHERE e.pgh_id > $1 AND e.pgh_obj_id = $2::%s%s',
                   revert.event_table, pghistory._obj_id_type(revert.event_table),
                   pghistory._citus_shard_filter(revert.event_table, 'e', '$2'))
       INTO v_written USING coalesce(v_before, 0), v_obj_id;
    RETURN v_written;
END
$$;
COMMENT ON FUNCTION pghistory.revert(regclass, bigint) IS
    'pghistory: puts the tracked row back as event pgh_id of event_table recorded it, through the table''s triggers; returns the pgh_id of the event that wrote, or NULL when nothing changed';
