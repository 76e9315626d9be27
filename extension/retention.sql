
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

-- Removes the events of tbl's history created before older_than (each
-- object's latest kept with keep_latest: NULL takes the table's retention
-- policy, else true). A partitioned event table drops the partitions
-- wholly before older_than where no row must stay; the rest is deleted in
-- windows of 10,000 pgh_ids. Writers are never blocked but while a
-- partition is dropped.
-- Refuses roles that do not own the event table. Returns the number of
-- events removed.
CREATE OR REPLACE FUNCTION pghistory.prune(tbl regclass, older_than timestamptz, keep_latest boolean DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_event_table regclass := pghistory._owned_history(prune.tbl, 'prune');
    v_keep_latest boolean := coalesce(prune.keep_latest,
                                      (SELECT p.keep_latest FROM pghistory.history_policy AS p
                                        WHERE p.event_table = pghistory._history_of(prune.tbl)), true);
    v_partition record;
    v_removed bigint := 0;
    v_batch bigint;
    v_low bigint;
    v_high bigint;
    v_blocked boolean;
    v_before text;
    v_prunable text;
BEGIN
    IF prune.older_than IS NULL THEN
        RAISE EXCEPTION 'pghistory: prune() needs older_than'
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Give a timestamp or an interval (before now).';
    END IF;
    -- one prune or maintain() of a table at a time; writers go on
    EXECUTE format('LOCK TABLE %s IN SHARE UPDATE EXCLUSIVE MODE', v_event_table);
    v_before := pghistory._allow_history_changes('on');
    -- an event may go: it is old and, with keep_latest, a later event of its object exists
    v_prunable := format('e.pgh_created_at < %L AND (%L::boolean IS false OR e.pgh_obj_id IS NULL OR EXISTS '
                         '(SELECT FROM %s AS l WHERE l.pgh_obj_id = e.pgh_obj_id AND l.pgh_id > e.pgh_id))',
                         prune.older_than, v_keep_latest, v_event_table);
    FOR v_partition IN SELECT * FROM pghistory._partitions(v_event_table) AS p
                        WHERE p.upper_bound <= prune.older_than LOOP
        EXECUTE format('SELECT EXISTS (SELECT FROM %s AS e WHERE NOT (%s))', v_partition.partition, v_prunable)
            INTO v_blocked;
        IF NOT v_blocked THEN
            EXECUTE format('SELECT count(*) FROM %s', v_partition.partition) INTO v_batch;
            EXECUTE format('DROP TABLE %s', v_partition.partition);
            v_removed := v_removed + v_batch;
        END IF;
    END LOOP;
    -- the rest in windows of 10,000 pgh_ids (an index range each)
    EXECUTE format('SELECT min(e.pgh_id), max(e.pgh_id) FROM %s AS e WHERE e.pgh_created_at < %L',
                   v_event_table, prune.older_than) INTO v_low, v_high;
    WHILE v_low <= v_high LOOP
        EXECUTE format('DELETE FROM %s AS e WHERE e.pgh_id >= %s AND e.pgh_id < %s AND %s',
                       v_event_table, v_low, v_low + 10000, v_prunable);
        GET DIAGNOSTICS v_batch = ROW_COUNT;
        v_removed := v_removed + v_batch;
        v_low := v_low + 10000;
    END LOOP;
    PERFORM pghistory._allow_history_changes(v_before);
    RETURN v_removed;
END
$$;
COMMENT ON FUNCTION pghistory.prune(regclass, timestamptz, boolean) IS
    'pghistory: remove the history of a table older than a time (each object keeps its latest event with '
    'keep_latest); drops whole partitions where it can; for the event table''s owner only. Returns the events removed';

-- prune() with an age: the events older than now() - older_than.
CREATE OR REPLACE FUNCTION pghistory.prune(tbl regclass, older_than interval, keep_latest boolean DEFAULT NULL)
RETURNS bigint
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT pghistory.prune(tbl, pg_catalog.now() - older_than, keep_latest)
$$;
COMMENT ON FUNCTION pghistory.prune(regclass, interval, boolean) IS
    'pghistory: remove the history of a table older than an age (see prune(regclass, timestamptz, boolean))';
