
-- ---------------------------------------------------------------------------
-- retention.sql: removing old history on purpose: set_retention() (a
-- policy maintain() applies) and prune() (once, by hand). The documented
-- maintenance path past the append-only guard, for the event table's owner
-- only.
-- ---------------------------------------------------------------------------

-- The event table holding the history of p_table: its own when p_table is
-- tracked, p_table itself when it is an event table (tracked or left by
-- untrack()). NULL otherwise.
CREATE OR REPLACE FUNCTION pghistory._history_of(p_table regclass)
RETURNS regclass
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce(
        (SELECT t.event_table FROM pghistory.tracked AS t WHERE t.tracked_table = p_table),
        (SELECT p_table WHERE (SELECT count(*) FROM pg_catalog.pg_attribute AS a
                                WHERE a.attrelid = p_table AND NOT a.attisdropped
                                  AND a.attname IN ('pgh_id', 'pgh_created_at', 'pgh_label', 'pgh_obj_id')) = 4))
$$;

-- The event table of p_table (see _history_of()) when the caller owns it.
-- Refuses tables without history and callers who do not own it; p_doing
-- names the action in the message.
CREATE OR REPLACE FUNCTION pghistory._owned_history(p_table regclass, p_doing text)
RETURNS regclass
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_event_table regclass := pghistory._history_of(p_table);
BEGIN
    IF v_event_table IS NULL THEN
        RAISE EXCEPTION 'pghistory: % is neither tracked nor an event table', p_table
            USING ERRCODE = 'undefined_object',
                  HINT = 'SELECT * FROM pghistory.tracking lists the tracked tables and their event tables.';
    END IF;
    IF NOT pghistory._owns(v_event_table) THEN
        RAISE EXCEPTION 'pghistory: only the owner of % can % its history', v_event_table, p_doing
            USING ERRCODE = 'insufficient_privilege',
                  HINT = format('Run it as %I (the owner of %s) or as a member of that role.',
                                pg_get_userbyid((SELECT c.relowner FROM pg_catalog.pg_class AS c
                                                  WHERE c.oid = v_event_table)), v_event_table);
    END IF;
    RETURN v_event_table;
END
$$;

-- Sets how long the history of a table is kept (keep NULL: forever);
-- maintain() applies it. With keep_latest each object keeps its latest
-- event however old, so as_of(), revert() and the diffs of newer events
-- stay right. Refuses a keep that is not positive and roles that do not
-- own the event table.
CREATE OR REPLACE FUNCTION pghistory.set_retention(tbl regclass, keep interval, keep_latest boolean DEFAULT true)
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_event_table regclass := pghistory._owned_history(set_retention.tbl, 'set the retention of');
BEGIN
    IF set_retention.keep <= interval '0' OR set_retention.keep_latest IS NULL THEN
        RAISE EXCEPTION 'pghistory: retention keep => % keep_latest => % is not a retention',
                set_retention.keep, coalesce(set_retention.keep_latest::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'keep is a positive interval (NULL: keep everything), keep_latest true or false.';
    END IF;
    PERFORM pghistory._set_policy(v_event_table, NULL, true, set_retention.keep, set_retention.keep_latest);
END
$$;
COMMENT ON FUNCTION pghistory.set_retention(regclass, interval, boolean) IS
    'pghistory: keep a table''s history for an interval (NULL: forever), applied by maintain(); '
    'keep_latest keeps each object''s latest event; for the event table''s owner only';

-- Sets lock_timeout to p_lock_timeout for the rest of the transaction and
-- returns what it was, for the caller to put back: every lock prune() and
-- maintain() wait for is bounded by it, so that their ACCESS EXCLUSIVE
-- requests (a partition made or dropped) never queue behind a long reader
-- with every writer queued behind them. Refuses a timeout that is not
-- positive (0 would wait for ever).
CREATE OR REPLACE FUNCTION pghistory._bound_locks(p_lock_timeout interval)
RETURNS text
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_before text := current_setting('lock_timeout');
BEGIN
    IF p_lock_timeout IS NULL OR p_lock_timeout <= interval '0' OR p_lock_timeout > interval '1 day' THEN
        RAISE EXCEPTION 'pghistory: lock_timeout % is not a lock timeout', coalesce(p_lock_timeout::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Give a positive interval up to a day, e.g. interval ''1 second'': how long a step waits '
                         'for a lock before it is left for the next run.';
    END IF;
    PERFORM set_config('lock_timeout', ceil(extract(epoch FROM p_lock_timeout) * 1000)::bigint::text || 'ms', true);
    RETURN v_before;
END
$$;

-- Locks an event table against other prunes, maintain()s and DDL (SHARE
-- UPDATE EXCLUSIVE: writers and readers go on) within lock_timeout. False
-- when it did not get the lock in time.
CREATE OR REPLACE FUNCTION pghistory._lock_for_maintenance(p_event_table regclass)
RETURNS boolean
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    EXECUTE format('LOCK TABLE %s IN SHARE UPDATE EXCLUSIVE MODE', p_event_table);
    RETURN true;
EXCEPTION WHEN lock_not_available THEN
    RETURN false;
END
$$;

-- The condition an event e of p_event_table meets when prune may remove it:
-- it is old and, with keep_latest, a later event of its object exists.
CREATE OR REPLACE FUNCTION pghistory._prunable(p_event_table regclass, p_older_than timestamptz, p_keep_latest boolean)
RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT format('e.pgh_created_at < %L AND (%L::boolean IS false OR e.pgh_obj_id IS NULL OR EXISTS '
                  '(SELECT FROM %s AS l WHERE l.pgh_obj_id = e.pgh_obj_id AND l.pgh_id > e.pgh_id))',
                  p_older_than, p_keep_latest, p_event_table)
$$;

-- The partitions of p_event_table lying wholly before p_older_than whose
-- every row may go: prune drops them instead of deleting their rows.
CREATE OR REPLACE FUNCTION pghistory._droppable_partitions(p_event_table regclass, p_older_than timestamptz,
                                                           p_keep_latest boolean)
RETURNS regclass[]
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_partition regclass;
    v_blocked boolean;
    v_droppable regclass[] := '{}'::regclass[];
BEGIN
    FOR v_partition IN SELECT p.partition FROM pghistory._partitions(p_event_table) AS p
                        WHERE p.upper_bound <= p_older_than LOOP
        EXECUTE format('SELECT EXISTS (SELECT FROM %s AS e WHERE NOT (%s))', v_partition,
                       pghistory._prunable(p_event_table, p_older_than, p_keep_latest)) INTO v_blocked;
        IF NOT v_blocked THEN
            v_droppable := v_droppable || v_partition;
        END IF;
    END LOOP;
    RETURN v_droppable;
END
$$;

-- Deletes the prunable events of p_event_table outside the partitions
-- p_except (those dropped whole), in windows of 10,000 pgh_ids (an index
-- range each), past the append-only guard. Only locks writers never wait
-- for (ROW EXCLUSIVE, row locks on old events). Refuses callers who do not
-- own the event table. Returns the number deleted, or NULL (and nothing
-- deleted) when a lock was not got within lock_timeout.
CREATE OR REPLACE FUNCTION pghistory._delete_prunable(p_event_table regclass, p_older_than timestamptz,
                                                      p_keep_latest boolean, p_except regclass[])
RETURNS bigint
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_where text := format('%s AND e.tableoid <> ALL (%L::oid[])',
                           pghistory._prunable(p_event_table, p_older_than, p_keep_latest), p_except::oid[]);
    v_removed bigint := 0;
    v_batch bigint;
    v_low bigint;
    v_high bigint;
    v_before text;
BEGIN
    PERFORM pghistory._owned_history(p_event_table, 'prune');
    EXECUTE format('SELECT min(e.pgh_id), max(e.pgh_id) FROM %s AS e WHERE e.pgh_created_at < %L '
                   'AND e.tableoid <> ALL (%L::oid[])', p_event_table, p_older_than, p_except::oid[])
        INTO v_low, v_high;
    v_before := pghistory._allow_history_changes('on');
    WHILE v_low <= v_high LOOP
        EXECUTE format('DELETE FROM %s AS e WHERE e.pgh_id >= %s AND e.pgh_id < %s AND %s',
                       p_event_table, v_low, v_low + 10000, v_where);
        GET DIAGNOSTICS v_batch = ROW_COUNT;
        v_removed := v_removed + v_batch;
        v_low := v_low + 10000;
    END LOOP;
    PERFORM pghistory._allow_history_changes(v_before);
    RETURN v_removed;
EXCEPTION WHEN lock_not_available THEN
    RETURN NULL;
END
$$;

-- Drops the partitions p_partitions of p_event_table (others are ignored)
-- in one statement: one wait, within lock_timeout, for the ACCESS
-- EXCLUSIVE locks on the event table and the partitions, held until the
-- transaction ends (so callers drop last). Returns the number of events
-- they held, or NULL (and nothing dropped) when a lock was not got in time.
CREATE OR REPLACE FUNCTION pghistory._drop_partitions(p_event_table regclass, p_partitions regclass[])
RETURNS bigint
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_partitions regclass[] := ARRAY(SELECT p.partition FROM pghistory._partitions(p_event_table) AS p
                                      WHERE p.partition = ANY (p_partitions) AND p.upper_bound IS NOT NULL);
    v_events bigint;
BEGIN
    IF cardinality(v_partitions) = 0 THEN
        RETURN 0;
    END IF;
    EXECUTE (SELECT 'SELECT sum(n)::bigint FROM (' || string_agg(format('SELECT count(*) AS n FROM %s', p), ' UNION ALL ')
                    || ') AS c' FROM unnest(v_partitions) AS p)
        INTO v_events;
    EXECUTE format('DROP TABLE %s', (SELECT string_agg(p::text, ', ') FROM unnest(v_partitions) AS p));
    RETURN v_events;
EXCEPTION WHEN lock_not_available THEN
    RETURN NULL;
END
$$;

-- Removes the events of tbl's history created before older_than (each
-- object's latest kept with keep_latest: NULL takes the table's retention
-- policy, else true). A partitioned event table drops the partitions
-- wholly before older_than where no row must stay; the rest is deleted in
-- windows of 10,000 pgh_ids. Every lock is waited for at most lock_timeout:
-- what could not be locked in time stays, with a warning, for the next
-- prune() or maintain(). Writers wait only while partitions are dropped
-- (at the end), and at most lock_timeout for that.
-- Refuses roles that do not own the event table. Returns the number of
-- events removed.
CREATE OR REPLACE FUNCTION pghistory.prune(tbl regclass, older_than timestamptz, keep_latest boolean DEFAULT NULL,
                                           lock_timeout interval DEFAULT interval '1 second')
RETURNS bigint
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_event_table regclass := pghistory._owned_history(prune.tbl, 'prune');
    v_keep_latest boolean := coalesce(prune.keep_latest,
                                      (SELECT p.keep_latest FROM pghistory.history_policy AS p
                                        WHERE p.event_table = pghistory._history_of(prune.tbl)), true);
    v_lock_timeout text;
    v_drop regclass[];
    v_removed bigint;
    v_dropped bigint;
BEGIN
    IF prune.older_than IS NULL THEN
        RAISE EXCEPTION 'pghistory: prune() needs older_than'
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Give a timestamp or an interval (before now).';
    END IF;
    v_lock_timeout := pghistory._bound_locks(prune.lock_timeout);
    IF NOT pghistory._lock_for_maintenance(v_event_table) THEN
        RAISE WARNING 'pghistory: prune() removed nothing: % was locked by another session for longer than %',
                v_event_table, prune.lock_timeout
            USING HINT = 'Another prune(), maintain() or DDL holds it; run prune() again later.';
        PERFORM set_config('lock_timeout', v_lock_timeout, true);
        RETURN 0;
    END IF;
    v_drop := pghistory._droppable_partitions(v_event_table, prune.older_than, v_keep_latest);
    v_removed := pghistory._delete_prunable(v_event_table, prune.older_than, v_keep_latest, v_drop);
    IF v_removed IS NULL THEN
        RAISE WARNING 'pghistory: prune() removed nothing: events of % were locked by another session for longer '
                      'than %', v_event_table, prune.lock_timeout
            USING HINT = 'Run prune() again later.';
        PERFORM set_config('lock_timeout', v_lock_timeout, true);
        RETURN 0;
    END IF;
    -- last: from here on the event table is locked ACCESS EXCLUSIVE
    v_dropped := pghistory._drop_partitions(v_event_table, v_drop);
    IF v_dropped IS NULL THEN
        RAISE WARNING 'pghistory: prune() left the partitions % for the next run: in use by another session for '
                      'longer than %', array_to_string(v_drop, ', '), prune.lock_timeout
            USING HINT = 'A long query reads them; the next prune() or maintain() drops them.';
    END IF;
    PERFORM set_config('lock_timeout', v_lock_timeout, true);
    RETURN v_removed + coalesce(v_dropped, 0);
END
$$;
COMMENT ON FUNCTION pghistory.prune(regclass, timestamptz, boolean, interval) IS
    'pghistory: remove the history of a table older than a time (each object keeps its latest event with '
    'keep_latest); drops whole partitions where it can; waits at most lock_timeout for a lock, leaving the '
    'rest for the next run; for the event table''s owner only. Returns the events removed';

-- prune() with an age: the events older than now() - older_than.
CREATE OR REPLACE FUNCTION pghistory.prune(tbl regclass, older_than interval, keep_latest boolean DEFAULT NULL,
                                           lock_timeout interval DEFAULT interval '1 second')
RETURNS bigint
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT pghistory.prune(tbl, pg_catalog.now() - older_than, keep_latest, lock_timeout)
$$;
COMMENT ON FUNCTION pghistory.prune(regclass, interval, boolean, interval) IS
    'pghistory: remove the history of a table older than an age (see prune(regclass, timestamptz, boolean, interval))';
