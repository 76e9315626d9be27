
-- ---------------------------------------------------------------------------
-- maintain.sql: what a scheduler calls (maintain()), and the fix after a
-- failover to a logical-replication subscriber (reset_identities())
-- ---------------------------------------------------------------------------

-- For every event table with a policy (pghistory.history_policy) that the
-- caller owns: applies its retention, makes its partitions ahead (and
-- moves rows out of the default partition into partitions of their own)
-- and drops the partitions retention let go. Idempotent; one maintain() at
-- a time (another one running returns at once, doing nothing). Every lock
-- is waited for at most lock_timeout; what could not be locked in time is
-- named in busy and left for the next run. The row work of every table
-- comes first (locks writers never wait for), the partitions made and
-- dropped last: their locks (ACCESS EXCLUSIVE on the default partition to
-- attach one, on the event table to drop one) last until the transaction
-- ends, so others wait for them only at the end, and at most lock_timeout
-- for each table. Returns a row per event table.
CREATE OR REPLACE FUNCTION pghistory.maintain(lock_timeout interval DEFAULT interval '1 second')
RETURNS TABLE (event_table regclass, partitions_made int, events_pruned bigint, busy regclass[])
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_lock_timeout text := pghistory._bound_locks(maintain.lock_timeout);
    v_policy pghistory.history_policy;
    v_tables pghistory.history_policy[] := '{}'::pghistory.history_policy[];
    v_pruned bigint[] := '{}'::bigint[];
    v_drops text[] := '{}'::text[]; -- oid[] literals: the partitions to drop, NULL when the table is busy
    v_drop regclass[];
    v_dropped bigint;
    v_removed bigint;
BEGIN
    IF NOT pg_try_advisory_xact_lock(hashtext('pghistory'), hashtext('maintain')) THEN
        PERFORM set_config('lock_timeout', v_lock_timeout, true);
        RETURN;
    END IF;
    PERFORM pghistory._forget_dropped_policies();
    -- the rows: locks writers never wait for
    FOR v_policy IN SELECT p.* FROM pghistory.history_policy AS p
                     WHERE pghistory._owns(p.event_table) ORDER BY p.event_table::oid LOOP
        v_removed := 0;
        v_drop := '{}'::regclass[];
        IF NOT pghistory._lock_for_maintenance(v_policy.event_table) THEN
            v_drop := NULL;
        ELSIF v_policy.keep IS NOT NULL THEN
            v_drop := pghistory._droppable_partitions(v_policy.event_table, now() - v_policy.keep,
                                                      v_policy.keep_latest);
            v_removed := pghistory._delete_prunable(v_policy.event_table, now() - v_policy.keep,
                                                    v_policy.keep_latest, v_drop);
            IF v_removed IS NULL THEN
                v_drop := NULL;
            END IF;
        END IF;
        v_tables := v_tables || v_policy;
        v_pruned := v_pruned || coalesce(v_removed, 0);
        v_drops := v_drops || v_drop::oid[]::text;
    END LOOP;
    -- the partitions: locks taken once per table and kept (see above)
    FOR i IN 1 .. cardinality(v_tables) LOOP
        maintain.event_table := (v_tables[i]).event_table;
        maintain.partitions_made := 0;
        maintain.events_pruned := v_pruned[i];
        maintain.busy := '{}'::regclass[];
        v_drop := v_drops[i]::oid[]::regclass[];
        IF v_drop IS NULL THEN
            maintain.busy := ARRAY[maintain.event_table];
        ELSE
            IF (v_tables[i]).partition_by IS NOT NULL
               AND (SELECT c.relkind FROM pg_catalog.pg_class AS c WHERE c.oid = maintain.event_table) = 'p' THEN
                BEGIN
                    maintain.partitions_made := pghistory._make_partitions(maintain.event_table,
                                                                           (v_tables[i]).partition_by);
                EXCEPTION WHEN lock_not_available THEN
                    maintain.busy := ARRAY[maintain.event_table];
                END;
            END IF;
            IF cardinality(maintain.busy) = 0 THEN
                v_dropped := pghistory._drop_partitions(maintain.event_table, v_drop);
                IF v_dropped IS NULL THEN
                    maintain.busy := v_drop;
                END IF;
                maintain.events_pruned := maintain.events_pruned + coalesce(v_dropped, 0);
            END IF;
        END IF;
        RETURN NEXT;
    END LOOP;
    PERFORM set_config('lock_timeout', v_lock_timeout, true);
END
$$;
COMMENT ON FUNCTION pghistory.maintain(interval) IS
    'pghistory: apply retention and make partitions ahead, for the event tables the caller owns; '
    'idempotent, one at a time, each lock waited for at most lock_timeout (busy: what was left for the '
    'next run); what pg_cron or cron calls';

-- Moves pghistory.event_id_seq, which numbers every event table's events
-- (and the identity of an event table numbered its own way, as partitioned
-- and kept ones of 0.1.0 may be), past the largest pgh_id of every event
-- table the caller owns: sequences are not replicated, so after a failover
-- to a logical-replication subscriber every tracked write would fail on
-- the event table's primary key until this runs. Never moves one back.
-- A caller who owns some event tables moves the shared sequence past
-- theirs only: after a failover, run it as a superuser.
-- Returns the event tables whose pgh_id it moved and where they continue.
CREATE OR REPLACE FUNCTION pghistory.reset_identities()
RETURNS TABLE (event_table regclass, next_pgh_id bigint)
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_table regclass;
    v_seq regclass;
    v_max bigint;
    v_last_value bigint;
    v_is_called boolean;
    v_shared bigint;
    v_behind regclass[] := '{}'::regclass[];
BEGIN
    FOR v_table IN SELECT DISTINCT h.e FROM (SELECT t.event_table AS e FROM pghistory.tracked AS t
                                            UNION SELECT p.event_table FROM pghistory.history_policy AS p) AS h
                    WHERE pghistory._owns(h.e) ORDER BY 1 LOOP
        -- each Citus node numbers a distributed event table itself
        CONTINUE WHEN pghistory._numbered_by(v_table, 'pghistory.node_event_id_seq');
        EXECUTE format('SELECT max(pgh_id) FROM %s', v_table) INTO v_max;
        CONTINUE WHEN v_max IS NULL;
        v_seq := pg_catalog.pg_get_serial_sequence(v_table::text, 'pgh_id')::regclass;
        IF v_seq IS NULL THEN  -- numbered by the shared sequence: moved once, below
            IF v_max > coalesce(pg_catalog.pg_sequence_last_value('pghistory.event_id_seq'), 0) THEN
                v_behind := v_behind || v_table;
                v_shared := greatest(v_shared, v_max);
            END IF;
            CONTINUE;
        END IF;
        EXECUTE format('SELECT last_value, is_called FROM %s', v_seq) INTO v_last_value, v_is_called;
        IF v_last_value < v_max OR (v_last_value = v_max AND NOT v_is_called) THEN
            PERFORM setval(v_seq, v_max, true);
            reset_identities.event_table := v_table;
            reset_identities.next_pgh_id := v_max + 1;
            RETURN NEXT;
        END IF;
    END LOOP;
    IF pghistory._event_ids_past(v_shared) THEN
        FOREACH v_table IN ARRAY v_behind LOOP
            reset_identities.event_table := v_table;
            reset_identities.next_pgh_id := v_shared + 1;
            RETURN NEXT;
        END LOOP;
    END IF;
END
$$;
COMMENT ON FUNCTION pghistory.reset_identities() IS
    'pghistory: move pghistory.event_id_seq (and any identity of its own) past the largest pgh_id of each event table the caller owns '
    '(after a failover to a logical-replication subscriber); returns those moved';
