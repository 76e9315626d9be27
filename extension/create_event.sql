
-- ---------------------------------------------------------------------------
-- create_event.sql: events recorded on purpose
-- ---------------------------------------------------------------------------

-- Snapshots the current row of tbl whose primary key is obj_id under a
-- label registered for the table (usually a manual_event), linked to the
-- active context. obj_id is given as text here; the overload below takes
-- it in the key's own type.
-- obj_id of a table with a composite primary key is the key as a JSON
-- array: '[1, "a"]'.
-- Refuses untracked tables, unknown labels, tables without a primary key
-- and keys that match no row. Returns the event's pgh_id.
CREATE OR REPLACE FUNCTION pghistory.create_event(tbl regclass, obj_id text, label text)
RETURNS bigint
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_config pghistory.tracked;
    v_labels text[];
    v_obj_id text;
    v_lists record;
    v_context_id uuid := pghistory.current_context_id();
    v_context jsonb;
    v_pgh_id bigint;
BEGIN
    SELECT * INTO v_config FROM pghistory.tracked AS t WHERE t.tracked_table = create_event.tbl;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'pghistory: % is not tracked', create_event.tbl
            USING ERRCODE = 'undefined_object',
                  HINT = 'Track it first: SELECT pghistory.track(...).';
    END IF;
    v_labels := ARRAY(SELECT t.label FROM unnest(v_config.trackers) AS t);
    IF create_event.label IS NULL OR NOT (create_event.label = ANY (v_labels)) THEN
        RAISE EXCEPTION 'pghistory: % has no tracker labelled %', create_event.tbl, quote_nullable(create_event.label)
            USING ERRCODE = 'undefined_object',
                  DETAIL = format('Its labels are: %s.', array_to_string(v_labels, ', ')),
                  HINT = format('Register the label with track(%L, trackers => ARRAY[..., pghistory.manual_event(%L)]).',
                                create_event.tbl::text, create_event.label);
    END IF;
    IF pghistory._object_key(create_event.tbl, 'new') IS NULL THEN
        RAISE EXCEPTION 'pghistory: % has no primary key, so its rows cannot be named by obj_id',
                create_event.tbl
            USING ERRCODE = 'feature_not_supported',
                  HINT = 'Add a primary key to the table, or record the change by writing the row.';
    END IF;
    IF v_config.context = 'json' AND v_context_id IS NOT NULL THEN
        v_context := pghistory._context_metadata();
    END IF;

    SELECT l.target, l.vals INTO v_lists
      FROM pghistory._snapshot_lists(v_config, 'new', '$2', '$3', '$4') AS l;
    SELECT l.target, l.vals INTO v_lists  -- numbered on the node of the row, on Citus
      FROM pghistory._citus_coordinator_lists(v_config, 'new', v_lists.target, v_lists.vals) AS l;
    v_obj_id := pghistory._canonical_obj_id(v_config.event_table, create_event.tbl, create_event.obj_id);
    EXECUTE format('INSERT INTO %s AS pgh_event (%s) SELECT %s FROM %s AS new WHERE %s RETURNING pgh_event.pgh_id',
                   v_config.event_table, v_lists.target, v_lists.vals,
                   pghistory._qualified_name(create_event.tbl),
                   pghistory._object_match(create_event.tbl, 'new', '$1'))
       INTO v_pgh_id
      USING v_obj_id, create_event.label, v_context_id, v_context;
    IF v_pgh_id IS NULL THEN
        RAISE EXCEPTION 'pghistory: % has no row with % = %', create_event.tbl,
                (SELECT CASE WHEN count(*) = 1 THEN min(quote_ident(k.column_name))
                             ELSE '(' || string_agg(quote_ident(k.column_name), ', ' ORDER BY k.n) || ')' END
                   FROM pghistory._key_columns(create_event.tbl) WITH ORDINALITY AS k(column_name, column_type, n)),
                quote_literal(create_event.obj_id)
            USING ERRCODE = 'no_data_found',
                  HINT = 'create_event snapshots an existing row; check the key.';
    END IF;
    IF v_config.context = 'fk' AND v_context_id IS NOT NULL THEN
        PERFORM pghistory._attach_context(v_context_id, current_setting('pghistory.context_metadata', true));
    END IF;
    RETURN v_pgh_id;
END
$$;
COMMENT ON FUNCTION pghistory.create_event(regclass, text, text) IS
    'pghistory: records an event of the current row of tbl with key obj_id under a registered label (a manual_event); returns its pgh_id';

-- create_event() with the key in its own type: 1, 1::bigint, a uuid.
CREATE OR REPLACE FUNCTION pghistory.create_event(tbl regclass, obj_id anyelement, label text)
RETURNS bigint
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT pghistory.create_event(tbl, obj_id::text, label) $$;
COMMENT ON FUNCTION pghistory.create_event(regclass, anyelement, text) IS
    'pghistory: create_event() with obj_id in the type of the primary key';
