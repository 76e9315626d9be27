
-- ---------------------------------------------------------------------------
-- browsing.sql: reading history back (pghistory.events(), the
-- pghistory.aggregate_events view) and putting a row back (pghistory.revert())
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
-- Rows without pgh_obj_id (tables without a single-column primary key)
-- cannot be told apart, so their updates have no diff.
-- ---------------------------------------------------------------------------

-- Readers of history run the browsing functions with their own rights, so
-- they must see which tables are tracked and how; the same facts are public
-- in pg_trigger and pg_proc (the generated trigger functions) anyway.
GRANT SELECT (tracked_table, event_table, trackers, fields, exclude) ON pghistory.tracked TO PUBLIC;

-- How an event of each label is to be read (see the header): 'i' insert,
-- 'n' a 'new' snapshot (update, manual), 'o' an 'old' snapshot of an
-- update, 'd' delete or truncate. Returns a CASE expression over
-- p_label_expression, built from the trackers (NULL: none known).
CREATE FUNCTION pghistory._event_kind_expression(p_trackers pghistory.tracker[], p_label_expression text)
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
CREATE FUNCTION pghistory._data_columns(p_event_table regclass)
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
CREATE FUNCTION pghistory._data_expression(p_columns name[], p_row text)
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
CREATE FUNCTION pghistory._diff_expression(p_columns name[], p_casts text[], p_old text, p_new text)
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

-- The event tables events() reads: the one of p_table (a tracked table or
-- an event table, tracked or kept after untrack()), or every tracked
-- table's when p_table is NULL. For each: the event table, the tracked
-- table's name (for kept history, the name its comment records), and the
-- trackers (NULL for kept history). Refuses a table that is neither.
CREATE FUNCTION pghistory._history_sources(p_table regclass)
RETURNS TABLE (event_table regclass, obj_model text, trackers pghistory.tracker[])
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN QUERY
        SELECT t.event_table, pghistory._qualified_name(t.tracked_table), t.trackers
          FROM pghistory.tracked AS t
         WHERE p_table IS NULL OR t.tracked_table = p_table OR t.event_table = p_table
         ORDER BY t.event_table;
    IF FOUND OR p_table IS NULL THEN
        RETURN;
    END IF;
    -- history kept after untrack(): an event table by its own columns
    IF (SELECT count(*) FROM pg_catalog.pg_attribute AS a
         WHERE a.attrelid = p_table AND NOT a.attisdropped
           AND a.attname IN ('pgh_id', 'pgh_created_at', 'pgh_label', 'pgh_obj_id')) = 4 THEN
        RETURN QUERY
            SELECT p_table,
                   substring(pg_catalog.obj_description(p_table::oid, 'pg_class') FROM '^pghistory: events of (.*)$'),
                   NULL::pghistory.tracker[];
        RETURN;
    END IF;
    RAISE EXCEPTION 'pghistory: % is not tracked', p_table
        USING ERRCODE = 'undefined_object',
              HINT = 'Give a tracked table or an event table; SELECT * FROM pghistory.tracking lists them.';
END
$$;

-- The query that reads one event table for events(): the eleven columns of
-- pghistory.aggregate_events, in order, with events()'s filters applied
-- inside it ($1 obj_id, $2 since, $3 until, $4 labels, $5 context_id; only
-- the filters given are written in). NULL when the filters exclude the
-- whole table (a context_id asked of a table without contexts).
-- A diff needs the event's neighbours in its object's whole history,
-- whatever the filters leave out; the query finds them in one of two ways:
--   one object, or a whole table: the object's (or every object's) events
--     are read once (one object's through the (pgh_obj_id, pgh_id) index,
--     in order), and lag()/lead() over them give each event its
--     neighbours; the other filters apply after that.
--   since, until, labels or context_id without obj_id: the few events they
--     select are found first, and each finds its neighbour with one more
--     probe of the (pgh_obj_id, pgh_id) index.
CREATE FUNCTION pghistory._events_query(p_event_table regclass, p_obj_model text, p_trackers pghistory.tracker[],
                                        p_read_context boolean, p_obj_id boolean, p_since boolean,
                                        p_until boolean, p_labels boolean, p_context_id boolean)
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_model text := pghistory._qualified_name(p_event_table);
    v_obj_id_type text;
    v_has_context_id boolean;
    v_has_context boolean;
    v_context text;
    v_where text[] := '{}';
    v_whole_histories boolean := p_obj_id OR NOT (p_since OR p_until OR p_labels OR p_context_id);
    v_from text;
    v_columns name[];
    v_casts text[];
BEGIN
    SELECT array_agg(c.column_name ORDER BY c.ord), array_agg(c.cast_to ORDER BY c.ord) INTO v_columns, v_casts
      FROM pghistory._data_columns(p_event_table) WITH ORDINALITY AS c(column_name, cast_to, ord);
    SELECT format_type(a.atttypid, a.atttypmod) INTO v_obj_id_type
      FROM pg_catalog.pg_attribute AS a
     WHERE a.attrelid = p_event_table AND a.attname = 'pgh_obj_id' AND NOT a.attisdropped;
    v_has_context_id := EXISTS (SELECT FROM pg_catalog.pg_attribute AS a WHERE a.attrelid = p_event_table
                                   AND a.attname = 'pgh_context_id' AND NOT a.attisdropped);
    v_has_context := EXISTS (SELECT FROM pg_catalog.pg_attribute AS a WHERE a.attrelid = p_event_table
                                AND a.attname = 'pgh_context' AND NOT a.attisdropped);
    IF p_context_id AND NOT v_has_context_id THEN
        RETURN NULL;
    END IF;

    -- json mode carries the metadata; fk mode points at pghistory.context
    -- (shown to those who may read it). A table switched between modes has
    -- events of both kinds.
    v_context := CASE
        WHEN v_has_context_id AND p_read_context THEN
            '(SELECT c.metadata FROM pghistory.context AS c WHERE c.id = pgh_row.pgh_context_id)' END;
    IF v_has_context THEN
        v_context := format('coalesce(pgh_row.pgh_context, %s)', coalesce(v_context, 'NULL'));
    END IF;

    IF v_whole_histories THEN
        -- Rows without pgh_obj_id (tables without a single-column key)
        -- belong to no object: they have no neighbours.
        v_from := format($sql$(SELECT pgh_event,
               CASE WHEN pgh_event.pgh_obj_id IS NOT NULL THEN lag(pgh_event) OVER pgh_object END AS pgh_prev,
               CASE WHEN pgh_event.pgh_obj_id IS NOT NULL THEN lead(pgh_event) OVER pgh_object END AS pgh_next
          FROM %1$s AS pgh_event%2$s
        WINDOW pgh_object AS (PARTITION BY pgh_event.pgh_obj_id ORDER BY pgh_event.pgh_id)) AS pgh_history
  CROSS JOIN LATERAL (SELECT (pgh_history.pgh_event).*) AS pgh_row
  CROSS JOIN LATERAL (SELECT (pgh_history.pgh_prev).*) AS pgh_prev
  CROSS JOIN LATERAL (SELECT (pgh_history.pgh_next).*) AS pgh_next$sql$,
            p_event_table,
            CASE WHEN p_obj_id THEN format(E'\n         WHERE pgh_event.pgh_obj_id = $1::%s', v_obj_id_type) ELSE '' END);
    ELSE
        v_from := format($sql$%1$s AS pgh_row
  LEFT JOIN LATERAL (SELECT pgh_other.* FROM %1$s AS pgh_other
                      WHERE %2$s = 'n' AND pgh_other.pgh_obj_id = pgh_row.pgh_obj_id AND pgh_other.pgh_id < pgh_row.pgh_id
                      ORDER BY pgh_other.pgh_id DESC LIMIT 1) AS pgh_prev ON true
  LEFT JOIN LATERAL (SELECT pgh_other.* FROM %1$s AS pgh_other
                      WHERE %2$s = 'o' AND pgh_other.pgh_obj_id = pgh_row.pgh_obj_id AND pgh_other.pgh_id > pgh_row.pgh_id
                      ORDER BY pgh_other.pgh_id LIMIT 1) AS pgh_next ON true$sql$,
            p_event_table, pghistory._event_kind_expression(p_trackers, 'pgh_row.pgh_label'));
    END IF;
    IF p_since THEN
        v_where := v_where || 'pgh_row.pgh_created_at >= $2'::text;
    END IF;
    IF p_until THEN
        v_where := v_where || 'pgh_row.pgh_created_at < $3'::text;
    END IF;
    IF p_labels THEN
        v_where := v_where || 'pgh_row.pgh_label = ANY ($4)'::text;
    END IF;
    IF p_context_id THEN
        v_where := v_where || 'pgh_row.pgh_context_id = $5'::text;
    END IF;

    RETURN format($sql$
SELECT %1$L::text || ':' || pgh_row.pgh_id AS pgh_slug, %1$L::text AS pgh_model,
       pgh_row.pgh_id::bigint AS pgh_id, pgh_row.pgh_created_at::timestamptz AS pgh_created_at,
       pgh_row.pgh_label::text AS pgh_label, %2$s AS pgh_data,
       CASE %3$s
            WHEN 'd' THEN '{}'::jsonb
            WHEN 'n' THEN CASE WHEN pgh_prev.pgh_id IS NOT NULL AND %4$s <> 'd' THEN %6$s END
            WHEN 'o' THEN CASE WHEN pgh_next.pgh_id IS NOT NULL AND %5$s <> 'i' THEN %7$s END
       END AS pgh_diff,
       %8$s::uuid AS pgh_context_id, %9$s::jsonb AS pgh_context,
       %10$L::text AS pgh_obj_model, pgh_row.pgh_obj_id::text AS pgh_obj_id
  FROM %11$s%12$s$sql$,
        v_model,
        pghistory._data_expression(v_columns, 'pgh_row'),
        pghistory._event_kind_expression(p_trackers, 'pgh_row.pgh_label'),
        pghistory._event_kind_expression(p_trackers, 'pgh_prev.pgh_label'),
        pghistory._event_kind_expression(p_trackers, 'pgh_next.pgh_label'),
        pghistory._diff_expression(v_columns, v_casts, 'pgh_prev', 'pgh_row'),
        pghistory._diff_expression(v_columns, v_casts, 'pgh_row', 'pgh_next'),
        CASE WHEN v_has_context_id THEN 'pgh_row.pgh_context_id' ELSE 'NULL' END,
        coalesce(v_context, 'NULL'),
        p_obj_model,
        v_from,
        CASE WHEN cardinality(v_where) > 0
             THEN E'\n WHERE ' || array_to_string(v_where, E'\n   AND ') ELSE '' END);
END
$$;

-- The history of one object, one table or every tracked table, oldest
-- first (pgh_created_at, then pgh_id), with the columns of
-- pghistory.aggregate_events. tbl is a tracked table, or an event table
-- (also one kept after untrack()); obj_id a primary key value of tbl, as
-- text; since (inclusive) and until (exclusive) bound pgh_created_at;
-- labels and context_id keep the events that have them. The filters are
-- written into each event table's query, so one object's history is an
-- index lookup; diffs are those of the unfiltered history.
-- Runs with the caller's rights: event tables the caller may not read are
-- left out (or refused, when named by tbl), and fk-mode context metadata
-- shows only to those who may read pghistory.context.
-- Refuses obj_id without tbl, an obj_id that is not a key value, and
-- tables that are neither tracked nor event tables.
CREATE FUNCTION pghistory.events(tbl        regclass    DEFAULT NULL,
                                 obj_id     text        DEFAULT NULL,
                                 since      timestamptz DEFAULT NULL,
                                 until      timestamptz DEFAULT NULL,
                                 labels     text[]      DEFAULT NULL,
                                 context_id uuid        DEFAULT NULL)
RETURNS TABLE (pgh_slug text, pgh_model text, pgh_id bigint, pgh_created_at timestamptz, pgh_label text,
               pgh_data jsonb, pgh_diff jsonb, pgh_context_id uuid, pgh_context jsonb,
               pgh_obj_model text, pgh_obj_id text)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
SET jit = off  -- compiling costs more than these index probes and scans gain from it
AS $$
DECLARE
    v_source record;
    v_query text;
    v_queries text[] := '{}';
    v_read_context boolean := has_table_privilege('pghistory.context', 'SELECT');
    v_obj_id_type text;
BEGIN
    IF events.obj_id IS NOT NULL AND events.tbl IS NULL THEN
        RAISE EXCEPTION 'pghistory: obj_id needs tbl, the table the object belongs to'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'For example pghistory.events(''orders'', obj_id => ''1'').';
    END IF;
    FOR v_source IN SELECT * FROM pghistory._history_sources(events.tbl) LOOP
        IF NOT (has_table_privilege(v_source.event_table, 'SELECT')
                AND has_schema_privilege((SELECT c.relnamespace FROM pg_catalog.pg_class AS c
                                           WHERE c.oid = v_source.event_table), 'USAGE')) THEN
            CONTINUE WHEN events.tbl IS NULL;  -- the history this role may read
            RAISE EXCEPTION 'pghistory: permission denied for the history in %', v_source.event_table
                USING ERRCODE = 'insufficient_privilege',
                      HINT = format('Reading history needs SELECT on its event table (and USAGE on its schema): '
                                    'GRANT SELECT ON %s TO %I.', v_source.event_table, current_user);
        END IF;
        IF events.obj_id IS NOT NULL THEN
            SELECT format_type(a.atttypid, a.atttypmod) INTO v_obj_id_type
              FROM pg_catalog.pg_attribute AS a
             WHERE a.attrelid = v_source.event_table AND a.attname = 'pgh_obj_id' AND NOT a.attisdropped;
            BEGIN
                EXECUTE format('SELECT $1::%s', v_obj_id_type) USING events.obj_id;
            EXCEPTION WHEN data_exception THEN
                RAISE EXCEPTION 'pghistory: obj_id % is not a valid key of % (%)',
                        quote_literal(events.obj_id), events.tbl, v_obj_id_type
                    USING ERRCODE = 'invalid_parameter_value',
                          HINT = 'obj_id is the value of the row''s primary key, as text.';
            END;
        END IF;
        v_query := pghistory._events_query(v_source.event_table, v_source.obj_model, v_source.trackers,
                                           v_read_context, events.obj_id IS NOT NULL, events.since IS NOT NULL,
                                           events.until IS NOT NULL, events.labels IS NOT NULL,
                                           events.context_id IS NOT NULL);
        IF v_query IS NOT NULL THEN
            v_queries := v_queries || v_query;
        END IF;
    END LOOP;
    IF cardinality(v_queries) = 0 THEN
        RETURN;
    END IF;
    RETURN QUERY EXECUTE
        'SELECT * FROM (' || array_to_string(v_queries, E'\nUNION ALL') || E'\n) AS pgh_events\n'
        || 'ORDER BY pgh_events.pgh_created_at, pgh_events.pgh_id, pgh_events.pgh_model'
        USING events.obj_id, events.since, events.until, events.labels, events.context_id;
END
$$;

-- Every event of every tracked table, oldest first: pghistory.events()
-- without filters. Filter with events() instead of a WHERE on the view:
-- its filters reach the event tables' indexes, the view's cannot. Shows
-- each role only the history it may read (see events()); history kept
-- after untrack() is read with events('<event table>').
CREATE VIEW pghistory.aggregate_events AS
SELECT e.pgh_slug, e.pgh_model, e.pgh_id, e.pgh_created_at, e.pgh_label, e.pgh_data, e.pgh_diff,
       e.pgh_context_id, e.pgh_context, e.pgh_obj_model, e.pgh_obj_id
  FROM pghistory.events() AS e;
COMMENT ON VIEW pghistory.aggregate_events IS
    'pghistory: every event of every tracked table the current role may read, oldest first';
GRANT SELECT ON pghistory.aggregate_events TO PUBLIC;
-- The view reads through events(), which runs as the caller already; on
-- PostgreSQL 15 and later say so on the view too.
DO $$
BEGIN
    IF current_setting('server_version_num')::int >= 150000 THEN
        ALTER VIEW pghistory.aggregate_events SET (security_invoker = true);
    END IF;
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
-- single-column primary key, unknown pgh_ids, snapshots holding a value
-- for a column dropped since, and snapshots a constraint now rejects.
CREATE FUNCTION pghistory.revert(event_table regclass, pgh_id bigint)
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
