
-- ---------------------------------------------------------------------------
-- revert_context.sql: taking back everything one context wrote
-- ---------------------------------------------------------------------------

-- A CASE expression over p_label_expression giving the operation of the
-- tracker that records events of that label: insert, update, delete,
-- truncate, or manual for a baseline (create_event(), backfill(), a label
-- no tracker has and that is not a default one).
CREATE OR REPLACE FUNCTION pghistory._operation_expression(p_trackers pghistory.tracker[], p_label_expression text)
RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT format('CASE %s %s ELSE ''manual'' END', p_label_expression,
                  string_agg(format('WHEN %L THEN %L', k.label, k.operation), ' ' ORDER BY k.ord))
      FROM (SELECT t.label, t.operation, t.ord
              FROM unnest(p_trackers) WITH ORDINALITY AS t(label, operation, condition, changed, snapshot, ord)
            UNION ALL
            SELECT d.label, d.label, 1000 + d.ord
              FROM unnest(ARRAY['insert', 'update', 'delete', 'truncate']) WITH ORDINALITY AS d(label, ord)
             WHERE NOT EXISTS (SELECT FROM unnest(p_trackers) AS t WHERE t.label = d.label)) AS k
$$;

-- For each object of p_config's table that context p_context_id wrote:
-- the first and last of its events in that context, the event whose
-- snapshot is the state before the first one (NULL: the row did not
-- exist; unknown_before: that state was never recorded), whether the row
-- exists now, and the events other contexts (or none) wrote for it since.
-- A distributed event table is read object by object: Citus cannot pair
-- events by pgh_id in lateral subqueries across shards, but it runs the
-- whole query on one shard when every table in it is filtered to the
-- object's (a router plan, _citus_shard_filter()).
CREATE OR REPLACE FUNCTION pghistory._context_objects(p_config pghistory.tracked, p_context_id uuid)
RETURNS TABLE (obj_id text, first_id bigint, last_id bigint, last_at timestamptz, target_id bigint,
               unknown_before boolean, present boolean, conflicts text)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_by_object boolean := (pghistory._citus_distribution(p_config.event_table)).kind IS NOT DISTINCT FROM 'distributed';
    v_query text;
    v_obj_id text;
BEGIN
    -- $1: the context; $2: the object, when read object by object
    v_query := format($sql$
SELECT c.pgh_obj_id::text, c.first_id, c.last_id, c.last_at,
       CASE WHEN f.pgh_op = 'insert' THEN NULL
            WHEN f.pgh_op <> 'update' OR f.pgh_kind = 'o' THEN c.first_id
            WHEN p.pgh_kind <> 'd' THEN p.pgh_id END,
       f.pgh_op = 'update' AND f.pgh_kind <> 'o' AND p.pgh_id IS NULL,
       EXISTS (SELECT FROM %2$s AS pgh_now WHERE %3$s = c.pgh_obj_id%8$s),
       (SELECT string_agg(x.pgh_id::text, ', ' ORDER BY x.pgh_id) FROM %1$s AS x
         WHERE x.pgh_obj_id = c.pgh_obj_id AND x.pgh_id > c.first_id AND x.pgh_context_id IS DISTINCT FROM $1%9$s)
  FROM (SELECT e.pgh_obj_id, min(e.pgh_id) AS first_id, max(e.pgh_id) AS last_id, max(e.pgh_created_at) AS last_at
          FROM %1$s AS e WHERE e.pgh_context_id = $1%6$s GROUP BY e.pgh_obj_id) AS c
 CROSS JOIN LATERAL (SELECT %4$s AS pgh_op, %5$s AS pgh_kind FROM %1$s AS e WHERE e.pgh_id = c.first_id%7$s) AS f
  LEFT JOIN LATERAL (SELECT e.pgh_id, %5$s AS pgh_kind FROM %1$s AS e
                      WHERE e.pgh_obj_id = c.pgh_obj_id AND e.pgh_id < c.first_id AND %5$s <> 'o'%7$s
                      ORDER BY e.pgh_id DESC LIMIT 1) AS p ON true
 ORDER BY c.pgh_obj_id$sql$,
        p_config.event_table, p_config.tracked_table, pghistory._object_key(p_config.tracked_table, 'pgh_now'),
        pghistory._operation_expression(p_config.trackers, 'e.pgh_label'),
        pghistory._event_kind_expression(p_config.trackers, 'e.pgh_label'),
        CASE WHEN v_by_object
             THEN format(' AND e.pgh_obj_id = $2::%s', pghistory._obj_id_type(p_config.event_table)) ELSE '' END
            || pghistory._citus_shard_filter(p_config.event_table, 'e', '$2'),
        pghistory._citus_shard_filter(p_config.event_table, 'e', '$2'),
        pghistory._citus_shard_filter(p_config.event_table, 'pgh_now', '$2'),
        pghistory._citus_shard_filter(p_config.event_table, 'x', '$2'));
    IF NOT v_by_object THEN
        RETURN QUERY EXECUTE v_query USING p_context_id, NULL::text;
        RETURN;
    END IF;
    FOR v_obj_id IN SELECT o.obj_id FROM pghistory._context_object_ids(p_config.event_table, p_context_id) AS o LOOP
        RETURN QUERY EXECUTE v_query USING p_context_id, v_obj_id;
    END LOOP;
END
$$;

-- The objects of event table p_event_table that context p_context_id
-- wrote, in order, as text.
CREATE OR REPLACE FUNCTION pghistory._context_object_ids(p_event_table regclass, p_context_id uuid)
RETURNS TABLE (obj_id text)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN QUERY EXECUTE format('SELECT e.pgh_obj_id::text FROM %s AS e WHERE e.pgh_context_id = $1 '
                                'GROUP BY e.pgh_obj_id ORDER BY e.pgh_obj_id', p_event_table)
       USING p_context_id;
END
$$;

-- Locks the rows of p_config's table that context p_context_id wrote and
-- that are there now, until the transaction ends, so that they stay as
-- revert_context() plans them. One statement; object by object on a
-- distributed table, where Citus locks rows only in a query it sends to
-- one shard.
CREATE OR REPLACE FUNCTION pghistory._lock_context_rows(p_config pghistory.tracked, p_context_id uuid)
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_obj_id text;
BEGIN
    IF (pghistory._citus_distribution(p_config.event_table)).kind IS DISTINCT FROM 'distributed' THEN
        EXECUTE format('SELECT FROM %1$s AS pgh_now WHERE %2$s IN (SELECT e.pgh_obj_id FROM %3$s AS e '
                       'WHERE e.pgh_context_id = $1) FOR UPDATE',
                       p_config.tracked_table, pghistory._object_key(p_config.tracked_table, 'pgh_now'),
                       p_config.event_table)
           USING p_context_id;
        RETURN;
    END IF;
    FOR v_obj_id IN SELECT o.obj_id FROM pghistory._context_object_ids(p_config.event_table, p_context_id) AS o LOOP
        EXECUTE format('SELECT FROM %s AS pgh_now WHERE %s%s FOR UPDATE', p_config.tracked_table,
                       pghistory._object_match(p_config.tracked_table, 'pgh_now', '$1'),
                       pghistory._citus_shard_filter(p_config.event_table, 'pgh_now', '$1'))
           USING v_obj_id;
    END LOOP;
END
$$;

-- Takes back everything written under context context_id, across every
-- tracked table: each row it touched is put back as it was before the
-- context's first change to it (deleted when the context inserted it,
-- inserted again when it deleted it, updated otherwise), newest change
-- first, as ordinary writes that the triggers record under the current
-- context. Before writing anything it locks the rows and looks for
-- conflicts, rows another context (or none) changed after this one did,
-- and refuses, naming them, unless override is true (then they are put
-- back all the same). dry_run returns the plan and writes nothing. One
-- statement: a revert that fails leaves nothing half-done. Returns the
-- plan, in the order it is (or would be) carried out: the event table,
-- the object and the action ('delete', 'insert' or 'update'). Runs with
-- the caller's rights: it reads every event table with a context and
-- writes the tables as the caller.
-- Refuses a NULL context, the active context itself, an unreadable event
-- table, a context that wrote rows of a table without a primary key or
-- not tracked with every column, and rows whose earlier state was never
-- recorded (older than tracking, not backfilled).
CREATE OR REPLACE FUNCTION pghistory.revert_context(context_id uuid, dry_run boolean DEFAULT false,
                                                    override boolean DEFAULT false)
RETURNS TABLE (event_table regclass, obj_id text, action text)
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_config pghistory.tracked;
    v_object record;
    v_plan jsonb := '[]';
    v_conflicts text[] := '{}';
    v_unknown text[] := '{}';
    v_step record;
BEGIN
    IF revert_context.context_id IS NULL THEN
        RAISE EXCEPTION 'pghistory: revert_context() needs a context id, not NULL'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'SELECT DISTINCT pgh_context_id, pgh_context FROM pghistory.aggregate_events lists them.';
    END IF;
    IF revert_context.context_id = pghistory.current_context_id() THEN
        RAISE EXCEPTION 'pghistory: context % is the active one; its revert would be recorded under it', revert_context.context_id
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Revert it from another context: SELECT pghistory.clear_context(), or set_context() a new one.';
    END IF;
    FOR v_config IN
        SELECT t.* FROM pghistory.tracked AS t
         WHERE EXISTS (SELECT FROM pg_catalog.pg_attribute AS a WHERE a.attrelid = t.event_table
                          AND a.attname = 'pgh_context_id' AND NOT a.attisdropped)
         ORDER BY t.event_table::text
    LOOP
        PERFORM pghistory._check_history_readable(v_config);
        CONTINUE WHEN NOT pghistory._has_context_events(v_config.event_table, revert_context.context_id);
        IF pghistory._object_key(v_config.tracked_table, 'r') IS NULL THEN
            RAISE EXCEPTION 'pghistory: context % wrote rows of %, which has no primary key, so they cannot be told apart',
                    revert_context.context_id, pghistory._qualified_name(v_config.tracked_table)
                USING ERRCODE = 'feature_not_supported',
                      HINT = 'Put those rows back by hand; revert_context() reverts tables with a primary key.';
        END IF;
        PERFORM pghistory._require_full_history(v_config, 'revert_context()');
        IF NOT revert_context.dry_run THEN
            PERFORM pghistory._lock_context_rows(v_config, revert_context.context_id);
        END IF;
        FOR v_object IN SELECT * FROM pghistory._context_objects(v_config, revert_context.context_id) LOOP
            IF v_object.conflicts IS NOT NULL THEN
                v_conflicts := v_conflicts || format('%s %s (events %s)', pghistory._qualified_name(v_config.tracked_table),
                                                     v_object.obj_id, v_object.conflicts);
            END IF;
            IF v_object.unknown_before THEN
                v_unknown := v_unknown || format('%s %s', pghistory._qualified_name(v_config.tracked_table), v_object.obj_id);
            END IF;
            CONTINUE WHEN v_object.target_id IS NULL AND NOT v_object.present AND NOT v_object.unknown_before;
            v_plan := v_plan || jsonb_build_object(
                'tracked_table', v_config.tracked_table::oid, 'event_table', v_config.event_table::oid,
                'obj_id', v_object.obj_id, 'last_at', v_object.last_at, 'last_id', v_object.last_id,
                'target_id', v_object.target_id,
                'action', CASE WHEN v_object.target_id IS NULL THEN 'delete'
                               WHEN v_object.present THEN 'update' ELSE 'insert' END);
        END LOOP;
    END LOOP;
    IF cardinality(v_unknown) > 0 THEN
        RAISE EXCEPTION 'pghistory: cannot revert context %: the state before it of % is not recorded',
                revert_context.context_id, array_to_string(v_unknown, ', ')
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Those rows were there before tracking began; backfill() records a baseline of such rows '
                         'from then on.';
    END IF;
    IF cardinality(v_conflicts) > 0 AND NOT revert_context.override THEN
        RAISE EXCEPTION 'pghistory: cannot revert context %: % changed since by another context',
                revert_context.context_id,
                CASE WHEN cardinality(v_conflicts) = 1 THEN 'a row was' ELSE cardinality(v_conflicts) || ' rows were' END
            USING ERRCODE = 'serialization_failure',
                  DETAIL = 'Changed since: ' || array_to_string(v_conflicts, '; ') || '.',
                  HINT = 'Revert the later changes first, or pass override => true to put the rows back all the same.';
    END IF;

    FOR v_step IN
        SELECT (s ->> 'tracked_table')::oid::regclass AS tracked_table, (s ->> 'event_table')::oid::regclass AS event_table,
               s ->> 'obj_id' AS obj_id, (s ->> 'target_id')::bigint AS target_id, s ->> 'action' AS action
          FROM jsonb_array_elements(v_plan) AS s
         ORDER BY (s ->> 'last_at')::timestamptz DESC, (s ->> 'last_id')::bigint DESC
    LOOP
        IF NOT revert_context.dry_run THEN
            IF v_step.action = 'delete' THEN
                EXECUTE format('DELETE FROM %s AS pgh_now WHERE %s%s', v_step.tracked_table,
                               pghistory._object_match(v_step.tracked_table, 'pgh_now', '$1'),
                               pghistory._citus_shard_filter(v_step.event_table, 'pgh_now', '$1'))
                   USING v_step.obj_id;
            ELSE
                PERFORM pghistory.revert(v_step.event_table, v_step.target_id);
            END IF;
        END IF;
        event_table := v_step.event_table;
        obj_id := v_step.obj_id;
        action := v_step.action;
        RETURN NEXT;
    END LOOP;
END
$$;

COMMENT ON FUNCTION pghistory.revert_context(uuid, boolean, boolean) IS
    'pghistory: takes back everything one context wrote, newest first, as tracked writes; refuses conflicts unless override; dry_run returns the plan';

-- Whether event table p_event_table holds events of context p_context_id
-- (an index probe).
CREATE OR REPLACE FUNCTION pghistory._has_context_events(p_event_table regclass, p_context_id uuid)
RETURNS boolean
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_found boolean;
BEGIN
    -- SELECT 1, not SELECT: Citus fails on an empty select list here ("a column
    -- definition list is required for functions returning record")
    EXECUTE format('SELECT EXISTS (SELECT 1 FROM %s AS e WHERE e.pgh_context_id = $1)', p_event_table)
       INTO v_found USING p_context_id;
    RETURN v_found;
END
$$;
