
-- ---------------------------------------------------------------------------
-- distribute.sql: pghistory.distribute(), Citus's create_distributed_table()
-- for a table that is already tracked
--
-- Citus refuses to distribute a table with triggers, and a table distributed
-- with pghistory's would have them write into an event table the workers do
-- not have. distribute() takes the triggers off, distributes the table,
-- distributes its event table (and the history in it) beside it and makes
-- the triggers again, in one transaction, keeping the registry row: the
-- table stays tracked since the moment it was first tracked, which as_of()
-- relies on for rows with no event yet.
-- ---------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION pghistory.distribute(
    tbl                 regclass,
    distribution_column text,
    shard_count         integer DEFAULT NULL,
    colocate_with       text    DEFAULT 'default')
RETURNS regclass
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_config pghistory.tracked;
    v_held text := (pghistory._citus_distribution(distribute.tbl)).kind;
    v_create regproc := pg_catalog.to_regproc('pg_catalog.create_distributed_table');
BEGIN
    -- every check first: nothing is written before they all pass
    IF NOT pghistory._owns(distribute.tbl) THEN
        RAISE EXCEPTION 'pghistory: only the owner of % can distribute it', distribute.tbl
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'Run distribute() as the owner of the table or as a member of that role.';
    END IF;
    SELECT * INTO v_config FROM pghistory.tracked AS t WHERE t.tracked_table = distribute.tbl;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'pghistory: % is not tracked', distribute.tbl
            USING ERRCODE = 'undefined_object',
                  HINT = 'Distribute it with create_distributed_table(), then track() it.';
    END IF;
    IF v_create IS NULL THEN
        RAISE EXCEPTION 'pghistory: distribute() needs Citus, which is not installed in this database'
            USING ERRCODE = 'feature_not_supported',
                  HINT = 'CREATE EXTENSION citus on a Citus coordinator first.';
    END IF;
    IF v_held IS NOT NULL THEN
        RAISE EXCEPTION 'pghistory: % is a Citus % table already', distribute.tbl, v_held
            USING ERRCODE = 'object_in_use',
                  HINT = 'distribute() is for tracked tables that are still plain tables.';
    END IF;
    IF EXISTS (SELECT FROM pghistory.history_policy AS p
                WHERE p.event_table = v_config.event_table AND p.partition_by IS NOT NULL) THEN
        RAISE EXCEPTION 'pghistory: the event table of % is partitioned, which distribute() does not support',
                distribute.tbl
            USING ERRCODE = 'feature_not_supported',
                  HINT = 'Untrack it, distribute it with create_distributed_table(), then track() it without partition_by.';
    END IF;
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_attribute AS a
                    WHERE a.attrelid = distribute.tbl AND a.attname = distribute.distribution_column
                      AND a.attnum > 0 AND NOT a.attisdropped) THEN
        RAISE EXCEPTION 'pghistory: % has no column %', distribute.tbl, quote_ident(distribute.distribution_column)
            USING ERRCODE = 'undefined_column',
                  HINT = 'Name the column Citus distributes the table by.';
    END IF;
    IF v_config.context = 'fk' THEN
        RAISE EXCEPTION 'pghistory: % is tracked with context => ''fk'', which cannot work on a distributed table',
                distribute.tbl
            USING ERRCODE = 'feature_not_supported',
                  DETAIL = 'The context rows would land in each node''s own pghistory.context.',
                  HINT = format('SELECT pghistory.track(%L, context => ''json'') first (with its other settings), '
                                'then distribute() it.', distribute.tbl::text);
    END IF;
    -- what track() checks on a distributed table
    PERFORM pghistory._citus_check_columns(distribute.tbl, v_config.context, v_config.fields, v_config.exclude,
                                           distribute.distribution_column::name);

    PERFORM pghistory._drop_triggers(distribute.tbl);
    EXECUTE format('SELECT %s($1, $2, colocate_with => $3, shard_count => $4)', v_create)
      USING distribute.tbl, distribute.distribution_column, distribute.colocate_with, distribute.shard_count;
    PERFORM pghistory._citus_prepare_ddl(distribute.tbl);
    PERFORM pghistory._citus_distribute_event_table(distribute.tbl, v_config.event_table);
    PERFORM pghistory._generate_triggers(distribute.tbl);
    PERFORM pghistory._set_append_only(v_config.event_table, v_config.append_only);
    RETURN v_config.event_table;
END
$$;
COMMENT ON FUNCTION pghistory.distribute(regclass, text, integer, text) IS
    'pghistory: distribute a tracked table with Citus (create_distributed_table()), its event table and history '
    'beside it, and keep tracking it; for the table''s owner only. Returns the event table';
