
-- ---------------------------------------------------------------------------
-- maintain.sql: what a scheduler calls (maintain()), and the fix after a
-- failover to a logical-replication subscriber (reset_identities())
-- ---------------------------------------------------------------------------

-- For every event table with a policy (pghistory.history_policy) that the
-- caller owns: makes its partitions ahead (and moves rows out of the
-- default partition into partitions of their own), then applies its
-- retention. Idempotent; one maintain() at a time (another one running
-- returns at once, doing nothing); writers go on, but for the moment a
-- partition is made or dropped. Returns a row per event table.
CREATE OR REPLACE FUNCTION pghistory.maintain()
RETURNS TABLE (event_table regclass, partitions_made int, events_pruned bigint)
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_policy pghistory.history_policy;
BEGIN
    IF NOT pg_try_advisory_xact_lock(hashtext('pghistory'), hashtext('maintain')) THEN
        RETURN;
    END IF;
    PERFORM pghistory._forget_dropped_policies();
    FOR v_policy IN SELECT p.* FROM pghistory.history_policy AS p
                     WHERE pghistory._owns(p.event_table) ORDER BY p.event_table::oid LOOP
        maintain.event_table := v_policy.event_table;
        maintain.partitions_made := 0;
        maintain.events_pruned := 0;
        EXECUTE format('LOCK TABLE %s IN SHARE UPDATE EXCLUSIVE MODE', v_policy.event_table);
        IF v_policy.partition_by IS NOT NULL
           AND (SELECT c.relkind FROM pg_catalog.pg_class AS c WHERE c.oid = v_policy.event_table) = 'p' THEN
            maintain.partitions_made := pghistory._make_partitions(v_policy.event_table, v_policy.partition_by);
        END IF;
        IF v_policy.keep IS NOT NULL THEN
            maintain.events_pruned := pghistory.prune(v_policy.event_table, now() - v_policy.keep,
                                                      v_policy.keep_latest);
        END IF;
        RETURN NEXT;
    END LOOP;
END
$$;
COMMENT ON FUNCTION pghistory.maintain() IS
    'pghistory: make partitions ahead and apply retention, for the event tables the caller owns; '
    'idempotent, one at a time; what pg_cron or cron calls';

-- Moves the pgh_id identity of every event table the caller owns past the
-- largest pgh_id there is: sequences are not replicated, so after a
-- failover to a logical-replication subscriber every tracked write would
-- fail on the event table's primary key until this runs. Never moves an
-- identity back. Returns the event tables moved and where they continue.
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
BEGIN
    FOR v_table IN SELECT DISTINCT h.e FROM (SELECT t.event_table AS e FROM pghistory.tracked AS t
                                            UNION SELECT p.event_table FROM pghistory.history_policy AS p) AS h
                    WHERE pghistory._owns(h.e) ORDER BY 1 LOOP
        v_seq := pg_catalog.pg_get_serial_sequence(v_table::text, 'pgh_id')::regclass;
        CONTINUE WHEN v_seq IS NULL;
        EXECUTE format('SELECT max(pgh_id) FROM %s', v_table) INTO v_max;
        EXECUTE format('SELECT last_value, is_called FROM %s', v_seq) INTO v_last_value, v_is_called;
        IF v_max IS NOT NULL AND (v_last_value < v_max OR (v_last_value = v_max AND NOT v_is_called)) THEN
            PERFORM setval(v_seq, v_max, true);
            reset_identities.event_table := v_table;
            reset_identities.next_pgh_id := v_max + 1;
            RETURN NEXT;
        END IF;
    END LOOP;
END
$$;
COMMENT ON FUNCTION pghistory.reset_identities() IS
    'pghistory: move the pgh_id identity of each event table the caller owns past its largest pgh_id '
    '(after a failover to a logical-replication subscriber); returns those moved';
