
-- ---------------------------------------------------------------------------
-- events.sql: reading history back: pghistory.events() and the
-- pghistory.aggregate_events view
-- ---------------------------------------------------------------------------

-- The event tables events() reads: the one of p_table (a tracked table or
-- an event table, tracked or kept after untrack()), or every tracked
-- table's when p_table is NULL. For each: the event table, the tracked
-- table's name (for kept history, the name its comment records), and the
-- trackers (NULL for kept history). Refuses a table that is neither.
CREATE OR REPLACE FUNCTION pghistory._history_sources(p_table regclass)
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

-- The query that reads one event table for events(): the twelve columns of
-- pghistory.aggregate_events, in order, with events()'s filters applied
-- inside it ($1 obj_id, $2 since, $3 until, $4 labels, $5 context_id,
-- $6 changed). p_filters names the filters given ('obj_id', 'since', ...):
-- only those are written in. changed is tested on the columns themselves,
-- before any diff is built: a column of the event and of the neighbour it
-- is diffed with differ (the names not in $6 fold away when the query is
-- planned, $6 being a constant then). NULL when the filters exclude the whole table (a
-- context_id asked of a table without contexts).
-- A diff needs the event's neighbours in its object's whole history,
-- whatever the filters leave out; the query finds them in one of two ways:
--   one object, or a whole table: the object's (or every object's) events
--     are read once (one object's through the (pgh_obj_id, pgh_id) index,
--     in order), and lag()/lead() over them give each event its
--     neighbours; the other filters apply after that.
--   since, until, labels or context_id without obj_id: the few events they
--     select are found first, and each finds its neighbour with one more
--     probe of the (pgh_obj_id, pgh_id) index.
CREATE OR REPLACE FUNCTION pghistory._events_query(p_event_table regclass, p_obj_model text, p_trackers pghistory.tracker[],
                                        p_read_context boolean, p_filters text[])
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_model text := pghistory._qualified_name(p_event_table);
    v_obj_id_type text;
    v_has_context_id boolean;
    v_has_context boolean;
    v_has_xact boolean;  -- history kept after untrack() from before 0.2.0 has no pgh_xact
    v_context text;
    v_where text[];
    v_obj_id boolean := 'obj_id' = ANY (p_filters);
    -- changed is read off the neighbours, which both ways give
    v_whole_histories boolean := v_obj_id OR cardinality(array_remove(p_filters, 'changed')) = 0;
    v_changed text;
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
    v_has_xact := EXISTS (SELECT FROM pg_catalog.pg_attribute AS a WHERE a.attrelid = p_event_table
                             AND a.attname = 'pgh_xact' AND NOT a.attisdropped);
    IF 'context_id' = ANY (p_filters) AND NOT v_has_context_id THEN
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
        -- Rows without pgh_obj_id (tables without a primary key)
        -- belong to no object: they have no neighbours. One object's rows
        -- all have one, so its query needs no CASE (and on a distributed
        -- table it runs on the object's shard, whose row type Citus does
        -- not carry into a CASE: _citus_shard_filter()).
        v_from := format($sql$(SELECT pgh_event,
               %3$s AS pgh_prev,
               %4$s AS pgh_next
          FROM %1$s AS pgh_event%2$s
        WINDOW pgh_object AS (PARTITION BY pgh_event.pgh_obj_id ORDER BY pgh_event.pgh_id)) AS pgh_history
  CROSS JOIN LATERAL (SELECT (pgh_history.pgh_event).*) AS pgh_row
  CROSS JOIN LATERAL (SELECT (pgh_history.pgh_prev).*) AS pgh_prev
  CROSS JOIN LATERAL (SELECT (pgh_history.pgh_next).*) AS pgh_next$sql$,
            p_event_table,
            CASE WHEN v_obj_id THEN format(E'\n         WHERE pgh_event.pgh_obj_id = $1::%s%s', v_obj_id_type,
                                           pghistory._citus_shard_filter(p_event_table, 'pgh_event', '$1'))
                 ELSE '' END,
            CASE WHEN v_obj_id THEN 'lag(pgh_event) OVER pgh_object'
                 ELSE 'CASE WHEN pgh_event.pgh_obj_id IS NOT NULL THEN lag(pgh_event) OVER pgh_object END' END,
            CASE WHEN v_obj_id THEN 'lead(pgh_event) OVER pgh_object'
                 ELSE 'CASE WHEN pgh_event.pgh_obj_id IS NOT NULL THEN lead(pgh_event) OVER pgh_object END' END);
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
    SELECT format($sql$CASE %1$s
            WHEN 'n' THEN pgh_prev.pgh_id IS NOT NULL AND %2$s <> 'd' AND (%4$s)
            WHEN 'o' THEN pgh_next.pgh_id IS NOT NULL AND %3$s <> 'i' AND (%5$s)
            ELSE false END$sql$,
                  pghistory._event_kind_expression(p_trackers, 'pgh_row.pgh_label'),
                  pghistory._event_kind_expression(p_trackers, 'pgh_prev.pgh_label'),
                  pghistory._event_kind_expression(p_trackers, 'pgh_next.pgh_label'),
                  coalesce(string_agg(format('%1$L = ANY ($6) AND pgh_prev.%1$I%2$s IS DISTINCT FROM pgh_row.%1$I%2$s',
                                             c.column_name, c.cast_to), ' OR '), 'false'),
                  coalesce(string_agg(format('%1$L = ANY ($6) AND pgh_row.%1$I%2$s IS DISTINCT FROM pgh_next.%1$I%2$s',
                                             c.column_name, c.cast_to), ' OR '), 'false'))
      INTO v_changed
      FROM unnest(v_columns, v_casts) AS c(column_name, cast_to);
    -- the other filters, in the order events() passes their values
    v_where := ARRAY(SELECT f.condition
                       FROM (VALUES ('since', 'pgh_row.pgh_created_at >= $2', 1),
                                    ('until', 'pgh_row.pgh_created_at < $3', 2),
                                    ('labels', 'pgh_row.pgh_label = ANY ($4)', 3),
                                    ('context_id', 'pgh_row.pgh_context_id = $5', 4),
                                    ('changed', v_changed, 5)) AS f(name, condition, ord)
                      WHERE f.name = ANY (p_filters)
                      ORDER BY f.ord);

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
       %10$L::text AS pgh_obj_model, pgh_row.pgh_obj_id::text AS pgh_obj_id, %11$s::xid8 AS pgh_xact
  FROM %12$s%13$s$sql$,
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
        CASE WHEN v_has_xact THEN 'pgh_row.pgh_xact' ELSE 'NULL' END,
        v_from,
        CASE WHEN cardinality(v_where) > 0
             THEN E'\n WHERE ' || array_to_string(v_where, E'\n   AND ') ELSE '' END);
END
$$;

-- The history of one object, one table or every tracked table, oldest
-- first: transactions in the order they began (pgh_created_at), the events
-- of each in the order they were written, across tables too (pgh_id: one
-- sequence numbers every event table's events, tables.sql), with the columns of
-- pghistory.aggregate_events; pgh_xact, the transaction that wrote each
-- event, groups them by transaction. tbl is a tracked table, or an event table
-- (also one kept after untrack()); obj_id a primary key value of tbl, as
-- text; since (inclusive) and until (exclusive) bound pgh_created_at;
-- labels and context_id keep the events that have them; changed keeps
-- those whose pgh_diff names one of its columns ("who changed status":
-- changed => '{status}'; inserts, deletes and first events, which have no
-- diff of columns, are left out). The other filters are
-- written into each event table's query, so one object's history is an
-- index lookup; diffs are those of the unfiltered history.
-- Runs with the caller's rights: event tables the caller may not read are
-- left out (or refused, when named by tbl), and fk-mode context metadata
-- shows only to those who may read pghistory.context.
-- Refuses obj_id without tbl, an obj_id that is not a key value, and
-- tables that are neither tracked nor event tables.
CREATE OR REPLACE FUNCTION pghistory.events(tbl        regclass    DEFAULT NULL,
                                 obj_id     text        DEFAULT NULL,
                                 since      timestamptz DEFAULT NULL,
                                 until      timestamptz DEFAULT NULL,
                                 labels     text[]      DEFAULT NULL,
                                 context_id uuid        DEFAULT NULL,
                                 changed    text[]      DEFAULT NULL)
RETURNS TABLE (pgh_slug text, pgh_model text, pgh_id bigint, pgh_created_at timestamptz, pgh_label text,
               pgh_data jsonb, pgh_diff jsonb, pgh_context_id uuid, pgh_context jsonb,
               pgh_obj_model text, pgh_obj_id text, pgh_xact xid8)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
SET jit = off  -- compiling costs more than these index probes and scans gain from it
AS $$
DECLARE
    v_source record;
    v_query text;
    v_queries text[] := '{}'::text[];
    v_read_context boolean := has_table_privilege('pghistory.context', 'SELECT');
    v_obj_id text;
    -- the filters given, by name
    v_filters text[] := ARRAY(SELECT f.name
                                FROM (VALUES ('obj_id', events.obj_id IS NOT NULL),
                                             ('since', events.since IS NOT NULL),
                                             ('until', events.until IS NOT NULL),
                                             ('labels', events.labels IS NOT NULL),
                                             ('context_id', events.context_id IS NOT NULL),
                                             ('changed', events.changed IS NOT NULL)) AS f(name, given)
                               WHERE f.given);
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
            v_obj_id := pghistory._canonical_obj_id(v_source.event_table, events.tbl, events.obj_id);
        END IF;
        v_query := pghistory._events_query(v_source.event_table, v_source.obj_model, v_source.trackers,
                                           v_read_context, v_filters);
        IF v_query IS NOT NULL THEN
            v_queries := v_queries || v_query;
        END IF;
    END LOOP;
    IF cardinality(v_queries) = 0 THEN
        RETURN;
    END IF;
    RETURN QUERY EXECUTE
        'SELECT * FROM (' || array_to_string(v_queries, E'\nUNION ALL') || E'\n) AS pgh_events\n'
        || CASE WHEN events.changed IS NOT NULL THEN E'WHERE pgh_events.pgh_diff ?| $6\n' ELSE '' END
        || 'ORDER BY pgh_events.pgh_created_at, pgh_events.pgh_id, pgh_events.pgh_model'
        USING v_obj_id, events.since, events.until, events.labels, events.context_id, events.changed;
END
$$;
COMMENT ON FUNCTION pghistory.events(regclass, text, timestamptz, timestamptz, text[], uuid, text[]) IS
    'pghistory: the history of one object, one table or every tracked table the caller may read, oldest first, with pgh_data and pgh_diff; filters by obj_id, since, until, labels, context_id, changed';

-- Every event of every tracked table, oldest first: pghistory.events()
-- without filters. Filter with events() instead of a WHERE on the view:
-- its filters reach the event tables' indexes, the view's cannot. Shows
-- each role only the history it may read (see events()); history kept
-- after untrack() is read with events('<event table>').
CREATE OR REPLACE VIEW pghistory.aggregate_events AS
SELECT e.pgh_slug, e.pgh_model, e.pgh_id, e.pgh_created_at, e.pgh_label, e.pgh_data, e.pgh_diff,
       e.pgh_context_id, e.pgh_context, e.pgh_obj_model, e.pgh_obj_id, e.pgh_xact
  FROM pghistory.events() AS e;
COMMENT ON VIEW pghistory.aggregate_events IS
    'pghistory: every event of every tracked table the current role may read, oldest first';

-- events() with the key in its own type: events('orders', obj_id => 1),
-- 1::bigint, a uuid. (A quoted '1' goes to events() above.)
CREATE OR REPLACE FUNCTION pghistory.events(tbl        regclass,
                                 obj_id     anycompatible,
                                 since      timestamptz DEFAULT NULL,
                                 until      timestamptz DEFAULT NULL,
                                 labels     text[]      DEFAULT NULL,
                                 context_id uuid        DEFAULT NULL,
                                 changed    text[]      DEFAULT NULL)
RETURNS TABLE (pgh_slug text, pgh_model text, pgh_id bigint, pgh_created_at timestamptz, pgh_label text,
               pgh_data jsonb, pgh_diff jsonb, pgh_context_id uuid, pgh_context jsonb,
               pgh_obj_model text, pgh_obj_id text, pgh_xact xid8)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT * FROM pghistory.events(tbl, obj_id::text, since, until, labels, context_id, changed) $$;
COMMENT ON FUNCTION pghistory.events(regclass, anycompatible, timestamptz, timestamptz, text[], uuid, text[]) IS
    'pghistory: events() with obj_id in the type of the primary key';
