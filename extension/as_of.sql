
-- ---------------------------------------------------------------------------
-- as_of.sql: a tracked table as it was at a moment, and what changed
-- between two moments
--
-- What "as it was at `at`" means. pgh_created_at is the start of the
-- transaction that wrote an event (now()), not its commit: the state at
-- `at` is the table after every change made by transactions that started
-- before `at`, each object's changes taken in the order they were written
-- (pgh_id). An object's state is the snapshot of its last event before
-- `at` (update_event(snapshot => 'old') events record the state before a
-- change and are passed over); a delete or truncate as that event means
-- the row did not exist. Objects that no event touched since `at` may be
-- read from the table itself, which is where their last recorded state is
-- when every change is recorded (the functions here refuse tables whose
-- trackers leave changes out); an object no longer in the table is gone
-- unless a delete or truncate since `at` says it left (a key change
-- leaves the old key without one). How the last event before `at` is
-- found in one index step per object: see _as_of_query(). Rows with no
-- event at all (there before tracking began, never changed since, never
-- backfilled) are taken as they are now for moments since tracking began
-- (pghistory.tracked.tracked_at), and are absent before. An object whose
-- first event is a baseline (backfill, create_event) is known as that
-- baseline from tracking's start; one whose first event is an update
-- (older than tracking, not backfilled) is absent until that update,
-- since its earlier state was never recorded.
-- ---------------------------------------------------------------------------

-- The query of the rows of p_config's table as they were at p_at (an SQL
-- expression of type timestamptz), typed as the table: its columns, in
-- order. p_objects, when not NULL, is an SQL expression of type text[]
-- (identities), p_object_count of them, that limits it to those objects. p_since_tracking says whether p_at is at or after
-- the moment tracking began (see the header).
--
-- How it stays proportional to the rows rather than the events. One pass
-- over the event table (pgh_bound) finds since_id, the first event
-- stamped at or after p_at: every event before it is stamped before p_at,
-- so an object's state at p_at is its last event below since_id, one
-- backward step of the (pgh_obj_id, pgh_id) index however many events
-- came later. The exceptions are the stragglers, events written after
-- since_id by transactions that started before p_at: they lie between
-- since_id and before_id (the last event stamped before p_at), a range
-- that is empty or short (transactions running across p_at), read once
-- (pgh_late). The objects rebuilt from their events (pgh_object) are
-- every row of the table when at least as many events came since p_at as
-- it has rows, else only the rows those events touched; plus the objects
-- deleted since p_at, found from the first delete since p_at on. The
-- other rows are read from the table. Given objects that are few against
-- the table's rows (a tenth) narrow all of it, the pass included, to
-- their own events (the pgh_obj_id index: one object's past is an index
-- lookup); more are picked from the whole table's past.
CREATE OR REPLACE FUNCTION pghistory._as_of_query(p_config pghistory.tracked, p_at text, p_objects text,
                                                  p_object_count bigint, p_since_tracking boolean)
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_key text := pghistory._object_key(p_config.tracked_table, 'pgh_now');
    v_kind text := pghistory._event_kind_expression(p_config.trackers, 'pgh_event.pgh_label');
    v_given text := CASE WHEN p_objects IS NOT NULL THEN format('SELECT pgh_given.obj_id::%s FROM unnest(%s) AS pgh_given(obj_id)',
                                                                pghistory._obj_id_type(p_config.event_table), p_objects) END;
    v_rows bigint;
    v_narrow boolean;
    v_columns text;
    v_event_columns text;
    v_query text;
BEGIN
    IF (pghistory._citus_distribution(p_config.event_table)).kind = 'distributed' THEN
        RETURN pghistory._as_of_query_one_pass(p_config, p_at, p_objects, p_since_tracking);
    END IF;
    SELECT string_agg(format('pgh_state.%I::%s AS %I', a.attname, format_type(a.atttypid, a.atttypmod), a.attname),
                      ', ' ORDER BY a.attnum),
           string_agg(format('pgh_event.%I::%s', a.attname, format_type(a.atttypid, a.atttypmod)), ', ' ORDER BY a.attnum)
      INTO v_columns, v_event_columns
      FROM pg_catalog.pg_attribute AS a
     WHERE a.attrelid = p_config.tracked_table AND a.attnum > 0 AND NOT a.attisdropped;
    -- the planner's row count (a partitioned table's: its partitions')
    SELECT coalesce(sum(greatest(c.reltuples, 0)), 0)::bigint INTO v_rows
      FROM pg_catalog.pg_class AS c
     WHERE c.oid = p_config.tracked_table AND c.relkind <> 'p'
        OR c.oid IN (SELECT t.relid FROM pg_catalog.pg_partition_tree(p_config.tracked_table) AS t WHERE t.isleaf);
    v_narrow := p_objects IS NOT NULL AND p_object_count * 10 < v_rows;
    -- the conditions on pgh_bound are subqueries so that they gate whole
    -- branches (one-time filters) rather than being tested row by row
    v_query := format($sql$
WITH pgh_bound AS MATERIALIZED (
    SELECT min(pgh_event.pgh_id) FILTER (WHERE pgh_event.pgh_created_at >= %2$s) AS since_id,
           max(pgh_event.pgh_id) FILTER (WHERE pgh_event.pgh_created_at < %2$s) AS before_id,
           min(pgh_event.pgh_id) FILTER (WHERE pgh_event.pgh_created_at >= %2$s AND %3$s = 'd') AS deleted_id,
           (%4$L OR count(*) FILTER (WHERE pgh_event.pgh_created_at >= %2$s) >= %5$s) AS every_row
      FROM %1$s AS pgh_event%6$s),
pgh_object AS MATERIALIZED (
    SELECT %7$s AS obj_id FROM %8$s AS pgh_now
     WHERE (SELECT b.since_id IS NOT NULL AND b.every_row FROM pgh_bound AS b)%9$s
    UNION ALL
    SELECT DISTINCT pgh_event.pgh_obj_id FROM %1$s AS pgh_event
     WHERE (SELECT NOT b.every_row FROM pgh_bound AS b) AND pgh_event.pgh_id >= (SELECT b.since_id FROM pgh_bound AS b)
       AND EXISTS (SELECT FROM %8$s AS pgh_now WHERE %10$s)
    UNION ALL
    SELECT DISTINCT pgh_event.pgh_obj_id FROM %1$s AS pgh_event
     WHERE pgh_event.pgh_id >= (SELECT b.deleted_id FROM pgh_bound AS b)
       AND pgh_event.pgh_created_at >= %2$s AND %3$s = 'd'%11$s
       AND NOT EXISTS (SELECT FROM %8$s AS pgh_now WHERE %10$s)),
pgh_late AS MATERIALIZED (
    SELECT pgh_event.pgh_obj_id, max(pgh_event.pgh_id) AS late_id
      FROM %1$s AS pgh_event
     WHERE pgh_event.pgh_id BETWEEN (SELECT b.since_id FROM pgh_bound AS b) AND (SELECT b.before_id FROM pgh_bound AS b)
       AND pgh_event.pgh_created_at < %2$s AND %3$s <> 'o'%11$s
     GROUP BY pgh_event.pgh_obj_id)
SELECT pgh_now.* FROM %8$s AS pgh_now
 WHERE (SELECT b.since_id IS NULL OR NOT b.every_row FROM pgh_bound AS b)
   AND NOT EXISTS (SELECT FROM pgh_object WHERE pgh_object.obj_id = %7$s)%9$s%12$s
UNION ALL
SELECT %13$s
  FROM pgh_object
  LEFT JOIN pgh_late ON pgh_late.pgh_obj_id = pgh_object.obj_id
 CROSS JOIN LATERAL (
       -- a straggler's state; else the last state below since_id; else,
       -- when the object's first event is a baseline, that; else, when it
       -- has no event at all (older than tracking), the row as it is
       (SELECT %3$s <> 'd' AS pgh_present, %14$s FROM %1$s AS pgh_event
         WHERE pgh_event.pgh_id = pgh_late.late_id)
       UNION ALL
       (SELECT %3$s <> 'd', %14$s FROM %1$s AS pgh_event
         WHERE pgh_event.pgh_obj_id = pgh_object.obj_id AND pgh_event.pgh_id < (SELECT b.since_id FROM pgh_bound AS b)
           AND %3$s <> 'o'
         ORDER BY pgh_event.pgh_id DESC LIMIT 1)
       UNION ALL
       (SELECT true, %14$s
          FROM (SELECT * FROM %1$s AS pgh_event WHERE %15$L AND pgh_event.pgh_obj_id = pgh_object.obj_id
                 ORDER BY pgh_event.pgh_id LIMIT 1) AS pgh_event
         WHERE %16$s)
       UNION ALL
       (SELECT true, pgh_now.* FROM %8$s AS pgh_now
         WHERE %15$L AND %17$s
           AND NOT EXISTS (SELECT FROM %1$s AS pgh_event WHERE pgh_event.pgh_obj_id = pgh_object.obj_id))
       LIMIT 1) AS pgh_state
 WHERE pgh_state.pgh_present$sql$,
        p_config.event_table, p_at, v_kind, v_narrow, v_rows,                                       -- 1-5
        CASE WHEN v_narrow THEN format(' WHERE pgh_event.pgh_obj_id IN (%s)', v_given) ELSE '' END,
        v_key, p_config.tracked_table,                                                             -- 7-8
        -- on the key columns, so that a composite key's index is used too
        CASE WHEN v_narrow THEN format(E'\n   AND EXISTS (SELECT FROM (%s) AS pgh_given(obj_id) WHERE %s)',
            v_given, pghistory._object_match(p_config.tracked_table, 'pgh_now', 'pgh_given.obj_id')) ELSE '' END,
        pghistory._object_match(p_config.tracked_table, 'pgh_now', 'pgh_event.pgh_obj_id'),        -- 10
        CASE WHEN v_narrow THEN format(' AND pgh_event.pgh_obj_id IN (%s)', v_given) ELSE '' END,
        CASE WHEN p_since_tracking THEN '' ELSE format(
            E'\n   AND EXISTS (SELECT FROM %s AS pgh_event WHERE pgh_event.pgh_obj_id = %s AND pgh_event.pgh_created_at < %s%s)',
            p_config.event_table, v_key, p_at, pghistory._citus_same_shard(p_config.event_table, 'pgh_event', 'pgh_now')) END,
        v_columns, v_event_columns,                                                                -- 13-14
        p_since_tracking,
        pghistory._baseline_expression(p_config.trackers, 'pgh_event.pgh_label'),
        pghistory._object_match(p_config.tracked_table, 'pgh_now', 'pgh_object.obj_id'));
    IF p_objects IS NULL OR v_narrow THEN
        RETURN v_query;
    END IF;
    RETURN format(E'SELECT pgh_now.* FROM (%s) AS pgh_now\n WHERE EXISTS (SELECT FROM (%s) AS pgh_given(obj_id) WHERE %s)',
                  v_query, v_given, pghistory._object_match(p_config.tracked_table, 'pgh_now', 'pgh_given.obj_id'));
END
$$;

-- _as_of_query() of a distributed (Citus) event table, where Citus plans
-- no lateral subquery over a CTE's rows: one aggregate pass over the
-- events of the objects changed since p_at (which Citus runs on each
-- shard), then one probe per object. p_objects, when not NULL, is an SQL
-- expression of type text[] that limits it to those objects.
CREATE OR REPLACE FUNCTION pghistory._as_of_query_one_pass(p_config pghistory.tracked, p_at text, p_objects text,
                                                           p_since_tracking boolean)
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_type text := pghistory._obj_id_type(p_config.event_table);
    v_key text := pghistory._object_key(p_config.tracked_table, 'pgh_now');
    v_columns text;
    v_objects text := CASE WHEN p_objects IS NOT NULL THEN format('(%s)::%s[]', p_objects, v_type) END;
BEGIN
    SELECT string_agg(format('pgh_state.%I::%s AS %I', a.attname, format_type(a.atttypid, a.atttypmod), a.attname),
                      ', ' ORDER BY a.attnum)
      INTO v_columns
      FROM pg_catalog.pg_attribute AS a
     WHERE a.attrelid = p_config.tracked_table AND a.attnum > 0 AND NOT a.attisdropped;
    -- pgh_later: the objects an event touched since p_at, each with, from
    -- one pass over their events: the last one before p_at that is no
    -- 'old' snapshot (before_id), the last delete before p_at (deleted_id:
    -- the row was gone when it is before_id), and its first event and
    -- first baseline (the same event: known as that baseline from before).
    -- Then one probe of the event table's primary key per such object (the
    -- OFFSET 0 keeps it a probe, not a hash of the whole event table; not
    -- on a distributed event table, where Citus plans no lateral subquery
    -- with an OFFSET: _citus_probe_fence()).
    RETURN format($sql$
WITH pgh_later AS MATERIALIZED (
    SELECT pgh_event.pgh_obj_id,
           max(pgh_event.pgh_id) FILTER (WHERE pgh_event.pgh_created_at < %2$s AND %9$s <> 'o') AS before_id,
           max(pgh_event.pgh_id) FILTER (WHERE pgh_event.pgh_created_at < %2$s AND %9$s = 'd') AS deleted_id,
           min(pgh_event.pgh_id) AS first_id,
           min(pgh_event.pgh_id) FILTER (WHERE %11$s) AS baseline_id
      FROM %1$s AS pgh_event
     WHERE pgh_event.pgh_obj_id IN (SELECT pgh_since.pgh_obj_id FROM %1$s AS pgh_since
                                     WHERE pgh_since.pgh_created_at >= %2$s%3$s)
     GROUP BY pgh_event.pgh_obj_id)
SELECT pgh_now.* FROM %4$s AS pgh_now
 WHERE NOT EXISTS (SELECT FROM pgh_later WHERE pgh_later.pgh_obj_id = %5$s)%6$s%7$s
UNION ALL
SELECT %8$s
  FROM pgh_later
 CROSS JOIN LATERAL (
       SELECT * FROM %1$s AS pgh_event
        WHERE pgh_event.pgh_id = CASE WHEN pgh_later.before_id IS NOT NULL
                                      THEN nullif(pgh_later.before_id, pgh_later.deleted_id)
                                      WHEN %10$L AND pgh_later.first_id = pgh_later.baseline_id
                                      THEN pgh_later.first_id END
       %12$s) AS pgh_state$sql$,
        p_config.event_table, p_at,
        CASE WHEN v_objects IS NOT NULL THEN format(' AND pgh_since.pgh_obj_id = ANY (%s)', v_objects) ELSE '' END,
        p_config.tracked_table, v_key,
        CASE WHEN p_since_tracking THEN '' ELSE format(
            E'\n   AND EXISTS (SELECT FROM %s AS pgh_event WHERE pgh_event.pgh_obj_id = %s AND pgh_event.pgh_created_at < %s%s)',
            p_config.event_table, v_key, p_at, pghistory._citus_same_shard(p_config.event_table, 'pgh_event', 'pgh_now')) END,
        -- on the key columns, so that a composite key's index is used too
        CASE WHEN v_objects IS NOT NULL THEN format(E'\n   AND EXISTS (SELECT FROM unnest(%s) AS pgh_object(obj_id) WHERE %s)',
            v_objects, pghistory._object_match(p_config.tracked_table, 'pgh_now', 'pgh_object.obj_id')) ELSE '' END,
        v_columns,
        pghistory._event_kind_expression(p_config.trackers, 'pgh_event.pgh_label'),
        p_since_tracking,
        pghistory._baseline_expression(p_config.trackers, 'pgh_event.pgh_label'),
        pghistory._citus_probe_fence(p_config.event_table));
END
$$;

-- The table whose row type p_row has, for as_of(); refuses other types.
CREATE OR REPLACE FUNCTION pghistory._row_type_table(p_type regtype)
RETURNS regclass
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_table regclass := (SELECT nullif(t.typrelid, 0)::regclass FROM pg_catalog.pg_type AS t WHERE t.oid = p_type);
BEGIN
    IF v_table IS NULL THEN
        RAISE EXCEPTION 'pghistory: as_of() takes a table''s row type, not %', p_type
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Pass NULL cast to the table: pghistory.as_of(NULL::orders, ''2026-11-01'').';
    END IF;
    RETURN v_table;
END
$$;

-- The rows of a tracked table as they were at `at` (see the header), as
-- rows of the table's own type: pass NULL::<table>. They join with other
-- tables' pasts: ... FROM pghistory.as_of(NULL::orders, t) AS o JOIN
-- pghistory.as_of(NULL::customers, t) AS c ON c.id = o.customer_id.
-- Runs with the caller's rights (SELECT on the table and its event table).
-- Refuses types that are not a tracked table's, tables without a primary
-- key, and tables whose history does not hold every column and change.
CREATE OR REPLACE FUNCTION pghistory.as_of(tbl anyelement, at timestamptz)
RETURNS SETOF anyelement
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
SET jit = off
SET work_mem = '64MB'  -- the objects changed since `at` aggregated in memory, not spilled
AS $$
DECLARE
    v_config pghistory.tracked := pghistory._time_travel_config(
        pghistory._row_type_table(pg_catalog.pg_typeof(as_of.tbl)::regtype), 'as_of()');
BEGIN
    PERFORM pghistory._require_full_history(v_config, 'as_of()');
    PERFORM pghistory._check_history_readable(v_config);
    IF as_of.at IS NULL THEN
        RAISE EXCEPTION 'pghistory: as_of() needs a moment, not NULL'
            USING ERRCODE = 'invalid_parameter_value', HINT = 'For example now() - interval ''1 day''.';
    END IF;
    RETURN QUERY EXECUTE pghistory._as_of_query(v_config, '$1', NULL, NULL, as_of.at >= v_config.tracked_at)
        USING as_of.at;
END
$$;

-- One object of a tracked table as it was at `at`: its row, or no row
-- when it did not exist then. obj_id is its primary key value (1, '1', a
-- uuid). An index lookup: costs the same however long the history is.
-- Refuses what as_of(tbl, at) refuses, and obj_ids that are no key value.
CREATE OR REPLACE FUNCTION pghistory.as_of(tbl anyelement, at timestamptz, obj_id anycompatible)
RETURNS SETOF anyelement
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $$
DECLARE
    v_config pghistory.tracked := pghistory._time_travel_config(
        pghistory._row_type_table(pg_catalog.pg_typeof(as_of.tbl)::regtype), 'as_of()');
BEGIN
    PERFORM pghistory._require_full_history(v_config, 'as_of()');
    PERFORM pghistory._check_history_readable(v_config);
    IF as_of.at IS NULL THEN
        RAISE EXCEPTION 'pghistory: as_of() needs a moment, not NULL'
            USING ERRCODE = 'invalid_parameter_value', HINT = 'For example now() - interval ''1 day''.';
    END IF;
    RETURN QUERY EXECUTE pghistory._as_of_query(v_config, '$1', 'ARRAY[$2]', 1, as_of.at >= v_config.tracked_at)
        USING as_of.at, pghistory._canonical_obj_id(v_config.event_table, v_config.tracked_table, as_of.obj_id::text);
END
$$;

-- What changed in a tracked table between since (inclusive) and until
-- (exclusive), the bounds events() has: one row per object that an event
-- stamped in that span touched and whose state differs between
-- as_of(since) and as_of(until): obj_id, change ('created': absent at
-- since; 'deleted': absent at until; 'updated'), and the net diff
-- {"col": [at since, at until]} of the columns whose values differ (NULL
-- for the side where the row is absent). An object created and deleted in
-- between, or changed and changed back, is not listed. since NULL: from
-- the beginning; until NULL: up to now and after. Ordered by obj_id.
-- Refuses what as_of() refuses, and since after until.
CREATE OR REPLACE FUNCTION pghistory.changes(tbl regclass, since timestamptz DEFAULT NULL,
                                             until timestamptz DEFAULT NULL)
RETURNS TABLE (obj_id text, change text, diff jsonb)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $$
DECLARE
    v_config pghistory.tracked := pghistory._time_travel_config(changes.tbl, 'changes()');
    v_since timestamptz := coalesce(changes.since, '-infinity');
    v_until timestamptz := coalesce(changes.until, 'infinity');
    v_objects text[];
    v_key text := pghistory._object_key(v_config.tracked_table, 'pgh_state');
BEGIN
    PERFORM pghistory._require_full_history(v_config, 'changes()');
    PERFORM pghistory._check_history_readable(v_config);
    IF v_since > v_until THEN
        RAISE EXCEPTION 'pghistory: changes() from % back to % goes backwards', v_since, v_until
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Give since before until.';
    END IF;
    EXECUTE format('SELECT array_agg(DISTINCT pgh_event.pgh_obj_id::text) FROM %s AS pgh_event '
                   'WHERE pgh_event.pgh_created_at >= $1 AND pgh_event.pgh_created_at < $2',
                   v_config.event_table)
       INTO v_objects USING v_since, v_until;
    IF v_objects IS NULL THEN
        RETURN;
    END IF;
    RETURN QUERY EXECUTE format($sql$
SELECT coalesce(pgh_after.obj_id, pgh_before.obj_id)::text,
       CASE WHEN pgh_before.state IS NULL THEN 'created' WHEN pgh_after.state IS NULL THEN 'deleted' ELSE 'updated' END,
       (SELECT pg_catalog.jsonb_object_agg(k.key, pg_catalog.jsonb_build_array(pgh_before.state -> k.key,
                                                                               pgh_after.state -> k.key))
          FROM pg_catalog.jsonb_object_keys(coalesce(pgh_after.state, pgh_before.state)) AS k(key)
         WHERE nullif(pgh_before.state -> k.key, 'null') IS DISTINCT FROM nullif(pgh_after.state -> k.key, 'null'))
  FROM (SELECT %1$s AS obj_id, pg_catalog.to_jsonb(pgh_state) AS state FROM (%2$s) AS pgh_state) AS pgh_before
  FULL JOIN (SELECT %1$s AS obj_id, pg_catalog.to_jsonb(pgh_state) AS state FROM (%3$s) AS pgh_state) AS pgh_after
    ON pgh_after.obj_id = pgh_before.obj_id
 WHERE pgh_before.state IS DISTINCT FROM pgh_after.state
 ORDER BY coalesce(pgh_after.obj_id, pgh_before.obj_id)$sql$,
        v_key,
        pghistory._as_of_query(v_config, '$1', '$3', cardinality(v_objects), v_since >= v_config.tracked_at),
        pghistory._as_of_query(v_config, '$2', '$3', cardinality(v_objects), v_until >= v_config.tracked_at))
        USING v_since, v_until, v_objects;
END
$$;

COMMENT ON FUNCTION pghistory.as_of(anyelement, timestamptz) IS
    'pghistory: the rows of a tracked table as they were at a moment, typed as the table: as_of(NULL::orders, at)';
COMMENT ON FUNCTION pghistory.as_of(anyelement, timestamptz, anycompatible) IS
    'pghistory: one row of a tracked table as it was at a moment (no row: it did not exist then)';
COMMENT ON FUNCTION pghistory.changes(regclass, timestamptz, timestamptz) IS
    'pghistory: per object, created / updated / deleted between two moments, with the net diff';
