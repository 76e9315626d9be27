
-- ---------------------------------------------------------------------------
-- citus.sql: tracking tables that Citus distributes
--
-- pghistory does not depend on Citus: whether it is there, and how a table
-- is distributed, is read from Citus's catalog (pg_dist_partition) through
-- dynamic SQL only when that catalog exists. A hash-distributed table gets
-- an event table distributed on the same column and co-located with it, so
-- that the triggers on each shard write into the event shard beside it.
-- ---------------------------------------------------------------------------

-- Whether Citus is installed in this database.
CREATE OR REPLACE FUNCTION pghistory._citus_installed()
RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT pg_catalog.to_regclass('pg_catalog.pg_dist_partition') IS NOT NULL $$;

-- How Citus holds a table: 'distributed' (hash-distributed, with its
-- distribution column), 'reference', 'local' (a Citus-local table), or
-- NULL for a table Citus does not know (and wherever Citus is not installed).
CREATE OR REPLACE FUNCTION pghistory._citus_distribution(p_table regclass,
                                                         OUT kind text, OUT distribution_column name)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_catalog regclass := pg_catalog.to_regclass('pg_catalog.pg_dist_partition');
    v_kind text;
    v_column name;
BEGIN
    kind := NULL;
    distribution_column := NULL;
    IF v_catalog IS NULL THEN
        RETURN;
    END IF;
    EXECUTE format('SELECT CASE WHEN p.partmethod = ''h'' THEN ''distributed''
                         WHEN p.repmodel = ''t'' THEN ''reference'' ELSE ''local'' END AS kind,
                    CASE WHEN p.partmethod = ''h''
                         THEN pg_catalog.column_to_column_name(p.logicalrelid, p.partkey)::name END AS distribution_column
               FROM %s AS p
              WHERE p.logicalrelid = $1', v_catalog)
       INTO v_kind, v_column
      USING p_table;
    kind := v_kind;
    distribution_column := v_column;
END
$$;

-- Sets, for the current transaction, what Citus needs for pghistory's DDL
-- on a table it holds: triggers on distributed tables (which it creates
-- only when told to), and one connection per node, as changing functions
-- it propagates needs. Does nothing for other tables.
CREATE OR REPLACE FUNCTION pghistory._citus_prepare_ddl(p_table regclass)
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF (pghistory._citus_distribution(p_table)).kind IS NOT NULL THEN
        PERFORM set_config('citus.enable_unsafe_triggers', 'on', true);
        PERFORM set_config('citus.multi_shard_modify_mode', 'sequential', true);
    END IF;
END
$$;

-- The command, for format(), that drops a trigger function of p_tracked
-- once its triggers are dropped: 'DROP FUNCTION %s', with CASCADE for a
-- distributed table. There, Citus leaves copies of the triggers that its
-- DROP TRIGGER does not reach: the TRUNCATE trigger, which a shard move
-- copies onto the moved shard (Citus drops no TRUNCATE trigger on shards),
-- and every trigger of the placement a move leaves behind for deferred
-- cleanup (pg_dist_cleanup). The DROP FUNCTION Citus sends to each node
-- then takes them along; on the coordinator, whose triggers of the table
-- were dropped just before, the same kinds of copies are all it can reach.
CREATE OR REPLACE FUNCTION pghistory._citus_drop_function_command(p_tracked regclass)
RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN (pghistory._citus_distribution(p_tracked)).kind = 'distributed'
                THEN 'DROP FUNCTION %s CASCADE' ELSE 'DROP FUNCTION %s' END
$$;

-- The fence that keeps a lateral subquery over p_event_table a probe per
-- outer row ('OFFSET 0'), or '' for a distributed event table: Citus
-- refuses an OFFSET in a lateral subquery that references a CTE
-- ("cannot push down this subquery"), and runs the join shard by shard.
CREATE OR REPLACE FUNCTION pghistory._citus_probe_fence(p_event_table regclass)
RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN (pghistory._citus_distribution(p_event_table)).kind = 'distributed' THEN '' ELSE 'OFFSET 0' END
$$;

-- Reading a distributed event table: the condition, to AND into a query,
-- that tells Citus which shard holds an object's events, since it cannot
-- know that pgh_obj_id names the row by its distribution column.
-- _citus_same_shard(): ' AND <p_events>.<column> = <p_rows>.<column>',
-- which makes a join of the event table with the table (or with itself)
-- a co-located one; _citus_shard_filter(): ' AND <p_events>.<column> =
-- <value>', the distribution column's value in the object identity
-- p_obj_id (an SQL expression of type text: the value itself for a
-- one-column key, its element of the JSON array for a composite one,
-- which Citus requires to include the distribution column), which sends a
-- query for one object to its one shard (a router plan). '' for any other
-- table, and for history kept after untrack() (no key to read it by).
CREATE OR REPLACE FUNCTION pghistory._citus_same_shard(p_event_table regclass, p_events text, p_rows text)
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_citus record := pghistory._citus_distribution(p_event_table);
BEGIN
    IF v_citus.kind IS DISTINCT FROM 'distributed' THEN
        RETURN '';
    END IF;
    RETURN format(' AND %s.%I = %s.%2$I', p_events, v_citus.distribution_column, p_rows);
END
$$;

CREATE OR REPLACE FUNCTION pghistory._citus_shard_filter(p_event_table regclass, p_events text, p_obj_id text)
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_citus record := pghistory._citus_distribution(p_event_table);
    v_key record;
BEGIN
    IF v_citus.kind IS DISTINCT FROM 'distributed' THEN
        RETURN '';
    END IF;
    SELECT k.column_type, k.n, (SELECT count(*) FROM pghistory._key_columns(t.tracked_table)) AS key_size
      INTO v_key
      FROM pghistory.tracked AS t
     CROSS JOIN LATERAL pghistory._key_columns(t.tracked_table) WITH ORDINALITY AS k(column_name, column_type, n)
     WHERE t.event_table = p_event_table AND k.column_name = v_citus.distribution_column;
    IF NOT FOUND THEN
        RETURN '';
    END IF;
    RETURN format(' AND %s.%I = (%s)::%s', p_events, v_citus.distribution_column,
                  CASE WHEN v_key.key_size = 1 THEN p_obj_id
                       ELSE format('(%s)::pg_catalog.jsonb ->> %s', p_obj_id, v_key.n - 1) END,
                  v_key.column_type);
END
$$;

-- The pgh_id of an event that the coordinator writes into a distributed
-- event table (a TRUNCATE's, create_event()'s, backfill()'s), taken as the
-- node that holds the row numbers it. Citus evaluates nextval() in an
-- INSERT on the coordinator, whose numbers are not the row's node's: such
-- an event could sort before the object's earlier events (then as_of()
-- after a TRUNCATE still showed its rows).
-- This function is STABLE and takes the row's distribution column, so
-- Citus sends it with the INSERT ... SELECT to the worker holding each row
-- rather than evaluating it once on the coordinator; there it draws from
-- that node's pghistory.node_event_id_seq, as the shard's own triggers
-- do. PostgreSQL still calls it once per row of a target list; SET makes
-- sure it is never inlined
-- (which would show Citus the nextval()). It is called only by the
-- statements _citus_coordinator_lists() makes.
CREATE OR REPLACE FUNCTION pghistory._node_event_id(p_row anyelement)
RETURNS bigint
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT pg_catalog.nextval('pghistory.node_event_id_seq') $$;

-- The column and value lists of an INSERT ... SELECT run on the coordinator
-- (target and vals as _snapshot_lists() made them, p_source the row alias), with
-- pgh_id from _node_event_id() when p_config's event table is distributed
-- and numbered by its nodes; the lists unchanged otherwise.
CREATE OR REPLACE FUNCTION pghistory._citus_coordinator_lists(p_config pghistory.tracked, p_source text,
                                                              INOUT target text, INOUT vals text)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_citus record := pghistory._citus_distribution(p_config.event_table);
BEGIN
    IF v_citus.kind IS DISTINCT FROM 'distributed'
       OR NOT pghistory._numbered_by(p_config.event_table, 'pghistory.node_event_id_seq') THEN
        RETURN;
    END IF;
    target := 'pgh_id, ' || target;
    vals := format('pghistory._node_event_id(%s.%I), ', p_source, v_citus.distribution_column) || vals;
END
$$;

-- Refuses what cannot work for table p_table distributed by column
-- p_distribution_column: context => 'fk', and fields or exclude that leave
-- that column out of the event table.
CREATE OR REPLACE FUNCTION pghistory._citus_check_columns(p_table regclass, p_context text, p_fields text[],
                                                          p_exclude text[], p_distribution_column name)
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF p_context = 'fk' THEN
        RAISE EXCEPTION 'pghistory: % is distributed by Citus, and context => ''fk'' cannot work there', p_table
            USING ERRCODE = 'feature_not_supported',
                  DETAIL = 'The context rows would land in each node''s own pghistory.context.',
                  HINT = 'Use context => ''json'' (events carry the metadata) or ''none''.';
    END IF;
    IF (p_fields IS NOT NULL AND NOT p_distribution_column = ANY (p_fields))
       OR p_distribution_column = ANY (coalesce(p_exclude, '{}')) THEN
        RAISE EXCEPTION 'pghistory: the events of % must record its distribution column %', p_table,
                quote_ident(p_distribution_column)
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'The event table is distributed on that column beside the table: keep it in fields '
                         '(and out of exclude).';
    END IF;
END
$$;

-- The checks track() makes on a table Citus holds, before anything is
-- written. Refuses reference and Citus-local tables, context => 'fk' and
-- fields that leave out the distribution column of a distributed table.
-- Returns the distribution column (NULL for a table Citus does not hold).
CREATE OR REPLACE FUNCTION pghistory._citus_check_track(p_table regclass, p_context text, p_fields text[],
                                                        p_exclude text[])
RETURNS name
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_citus record := pghistory._citus_distribution(p_table);
BEGIN
    IF v_citus.kind IS NULL THEN
        RETURN NULL;
    END IF;
    IF v_citus.kind <> 'distributed' THEN
        RAISE EXCEPTION 'pghistory: % is a Citus % table, which pghistory does not track', p_table, v_citus.kind
            USING ERRCODE = 'feature_not_supported',
                  HINT = format('Track it before making it a %s table (it stays a plain table), or distribute it '
                                'with create_distributed_table() and track it then.', v_citus.kind);
    END IF;
    PERFORM pghistory._citus_check_columns(p_table, p_context, p_fields, p_exclude, v_citus.distribution_column);
    PERFORM pghistory._citus_prepare_ddl(p_table);
    RETURN v_citus.distribution_column;
END
$$;

-- Refuses an event table that Citus holds for a table it does not (one
-- left distributed by undistribute_table() of its table): the triggers of
-- a plain table cannot insert from their transition tables into a
-- distributed table, so every write to the table would fail.
CREATE OR REPLACE FUNCTION pghistory._citus_check_event_table(p_table regclass, p_event_table regclass)
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_events text := (pghistory._citus_distribution(p_event_table)).kind;
BEGIN
    IF v_events IS NOT NULL AND (pghistory._citus_distribution(p_table)).kind IS NULL THEN
        RAISE EXCEPTION 'pghistory: % is a Citus % table and % is not, so its writes could not be recorded there',
                p_event_table, v_events, p_table
            USING ERRCODE = 'object_in_use',
                  HINT = format('Distribute %s again (create_distributed_table(), then track()), or track it into a '
                                'new event table (event_table => ...); the history in %s stays readable.',
                                p_table, p_event_table);
    END IF;
END
$$;

-- Distributes the event table of a distributed table on the same column,
-- co-located with it; its primary key becomes (pgh_id, that column), as
-- Citus requires. Does nothing for an event table already distributed
-- with the table. Refuses one distributed otherwise.
CREATE OR REPLACE FUNCTION pghistory._citus_distribute_event_table(p_tracked regclass, p_event_table regclass)
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_table record := pghistory._citus_distribution(p_tracked);
    v_events record := pghistory._citus_distribution(p_event_table);
    v_key name;
    v_create regproc := pg_catalog.to_regproc('pg_catalog.create_distributed_table');
BEGIN
    IF v_table.kind IS DISTINCT FROM 'distributed' THEN
        RETURN;
    END IF;
    IF v_events.kind IS NOT NULL THEN
        IF v_events.distribution_column IS DISTINCT FROM v_table.distribution_column THEN
            RAISE EXCEPTION 'pghistory: % is a Citus table not distributed by %, as % is', p_event_table,
                    quote_ident(v_table.distribution_column), p_tracked
                USING ERRCODE = 'object_in_use',
                      HINT = format('SELECT undistribute_table(%L), then track() again.', p_event_table::text);
        END IF;
        RETURN;
    END IF;
    -- Citus would copy its guard onto the shards with TRUNCATE in it, and
    -- never drop it there: it goes first, and comes back in the form that
    -- works on shards (_citus_set_append_only)
    IF EXISTS (SELECT FROM pg_catalog.pg_trigger
                WHERE tgrelid = p_event_table AND tgname = 'pgh_append_only') THEN
        EXECUTE format('DROP TRIGGER pgh_append_only ON %s', p_event_table);
    END IF;
    SELECT c.conname INTO v_key FROM pg_catalog.pg_constraint AS c
     WHERE c.conrelid = p_event_table AND c.contype = 'p';
    IF v_key IS NOT NULL THEN
        EXECUTE format('ALTER TABLE %s DROP CONSTRAINT %I', p_event_table, v_key);
    END IF;
    EXECUTE format('ALTER TABLE %s ADD PRIMARY KEY (pgh_id, %I)', p_event_table, v_table.distribution_column);
    PERFORM pghistory._citus_node_numbering(p_event_table);
    EXECUTE format('SELECT %s($1, $2, colocate_with => $3)', v_create)
      USING p_event_table, v_table.distribution_column::text, p_tracked::text;
END
$$;

-- Gives an event table about to be distributed its pgh_id from
-- pghistory.node_event_id_seq (tables.sql), which each node numbers
-- itself: a sequence every event table shares is left as it is by Citus on
-- every node, each numbering from 1, and the identity Citus gives each node
-- a range of (worker group g from g << 48) cannot move up when a shard
-- arrives from a node of a later group. Sets every node's numbering above
-- the events there are, which Citus is about to spread over the workers
-- (this node's directly, the workers' through run_command_on_workers(),
-- in connections of their own: a number skipped if this transaction rolls
-- back is only a gap).
CREATE OR REPLACE FUNCTION pghistory._citus_node_numbering(p_event_table regclass)
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_max bigint;
    v_failed text;
BEGIN
    EXECUTE format('ALTER TABLE %s ALTER COLUMN pgh_id DROP IDENTITY IF EXISTS', p_event_table);
    EXECUTE format('ALTER TABLE %s ALTER COLUMN pgh_id SET DEFAULT pg_catalog.nextval(''pghistory.node_event_id_seq'')',
                   p_event_table);
    EXECUTE format('SELECT max(pgh_id) FROM %s', p_event_table) INTO v_max;
    PERFORM pghistory._citus_number_above(v_max);
    EXECUTE format('SELECT string_agg(format(''%%s:%%s: %%s'', w.nodename, w.nodeport, w.result), ''; '')
                      FROM %s(%L) AS w WHERE NOT w.success',
                   pg_catalog.to_regproc('pg_catalog.run_command_on_workers'),
                   format('SELECT pghistory._citus_number_above(%s)', coalesce(v_max, 0)))
       INTO v_failed;
    IF v_failed IS NOT NULL THEN
        RAISE EXCEPTION 'pghistory: could not set the numbering of events on every worker: %', v_failed
            USING ERRCODE = 'connection_failure',
                  HINT = 'Make sure every worker is reachable and has pghistory, then distribute again.';
    END IF;
END
$$;

-- Sets this node's numbering of pgh_id (pghistory.node_event_id_seq) above
-- p_max (the largest pgh_id of an event table or shard that is on this
-- node now, or is about to be): the node of Citus group g numbers in
-- blocks of 2^44, the blocks b = g (mod 256) with b >= 256 (so no two
-- nodes draw the same number, and history from before distribution,
-- numbered by pghistory.event_id_seq, stays below). A node that numbers below the shard moves up to the lowest
-- of its blocks above it; a node that never numbered starts at such a
-- block. Never moves down. One at a time on the node (an advisory lock
-- held to the end of the transaction), so setval() never races another
-- setval(); writers' nextval() meanwhile draw below the block it moves to.
-- SECURITY DEFINER: a shard arrives with its owner's rights (Citus runs
-- the DDL on the node as the table's owner), who may not setval() the
-- sequence. EXECUTE stays with PUBLIC, as for _event_ids_past(): all
-- anyone can do with it is a gap in the numbers, never past 2^62 (a node
-- moved that far takes no more shards from nodes numbering above it).
CREATE OR REPLACE FUNCTION pghistory._citus_number_above(p_max bigint)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_group bigint;
    v_max bigint := p_max;
    v_last bigint;
    v_block bigint;
BEGIN
    IF p_max >= 1::bigint << 62 THEN
        RAISE EXCEPTION 'pghistory: the pgh_id numbering of a node is not moved past 2^62 (pgh_id % was asked for)', p_max
            USING ERRCODE = 'numeric_value_out_of_range',
                  HINT = 'Renumber the events above 2^62, or have a superuser setval() pghistory.node_event_id_seq.';
    END IF;
    PERFORM pg_advisory_xact_lock('pghistory.node_event_id_seq'::regclass::oid::bigint);
    EXECUTE format('SELECT l.groupid FROM %s AS l', pg_catalog.to_regclass('pg_catalog.pg_dist_local_group'))
       INTO v_group;
    IF v_group >= 256 THEN
        RAISE EXCEPTION 'pghistory: this node is of Citus group %, and distributed event tables number events on nodes '
                        'of groups below 256 only', v_group
            USING ERRCODE = 'program_limit_exceeded',
                  HINT = 'Keep the shards of tracked tables on nodes of lower groups.';
    END IF;
    v_last := pg_catalog.pg_sequence_last_value('pghistory.node_event_id_seq');
    IF v_last >> 44 >= 256 AND (v_last >> 44) % 256 = v_group THEN  -- numbering in a block of its own
        IF v_last >= coalesce(v_max, 0) THEN
            RETURN;
        END IF;
    ELSE
        v_last := NULL;
    END IF;
    v_block := greatest(256, (greatest(v_max, v_last, 0) >> 44) + 1);
    v_block := v_block + ((v_group - v_block) % 256 + 256) % 256;
    IF v_block >= 1::bigint << 18 THEN
        RAISE EXCEPTION 'pghistory: this node (Citus group %) has no block of pgh_ids left above %', v_group, v_max
            USING ERRCODE = 'program_limit_exceeded';
    END IF;
    PERFORM pg_catalog.setval('pghistory.node_event_id_seq', v_block << 44, true);
END
$$;

-- The distributed table whose shard relation p_relation is, by its name
-- (the table's, then _ and the shard id: Citus names shards so, and a
-- split makes its new shards before their ids are in pg_dist_shard), or
-- NULL for a relation that is not a shard.
CREATE OR REPLACE FUNCTION pghistory._citus_shard_of(p_relation oid)
RETURNS regclass
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_table regclass;
BEGIN
    EXECUTE format('SELECT p.logicalrelid FROM %s AS p
                      JOIN pg_catalog.pg_class AS t ON t.oid = p.logicalrelid
                      JOIN pg_catalog.pg_class AS shard ON shard.oid = $1
                     WHERE shard.relnamespace = t.relnamespace
                       AND shard.relname = t.relname || ''_'' || substring(shard.relname FROM ''_([0-9]+)$'')',
                   pg_catalog.to_regclass('pg_catalog.pg_dist_partition'))
       INTO v_table
      USING p_relation;
    RETURN v_table;
END
$$;

-- ddl_command_end on a node of a Citus cluster: sets the node's numbering
-- (_citus_number_above) above every event table, shell or shard, that the
-- command made or altered there. Citus makes a shard on a node with
-- CREATE TABLE, and one that it moves, copies or splits there gets its
-- primary key after its rows (ALTER TABLE ... ADD PRIMARY KEY, before
-- writes reach it there): so the
-- node numbers the shard's new events above its old ones, whichever node
-- numbered those. (Citus makes shards without the shell's sequence
-- defaults: a shard is told by its table.)
CREATE OR REPLACE FUNCTION pghistory._citus_follow_shards()
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_relation regclass;
    v_max bigint;
BEGIN
    FOR v_relation IN
        SELECT DISTINCT d.objid::regclass FROM pg_event_trigger_ddl_commands() AS d
         WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.objsubid = 0
           AND d.command_tag IN ('CREATE TABLE', 'ALTER TABLE')
           AND EXISTS (SELECT FROM pg_catalog.pg_attribute AS a  -- not a table that is only named like a shard
                        WHERE a.attrelid = d.objid AND a.attname = 'pgh_id' AND NOT a.attisdropped)
           AND pghistory._numbered_by(coalesce(pghistory._citus_shard_of(d.objid), d.objid),
                                      'pghistory.node_event_id_seq')
    LOOP
        EXECUTE format('SELECT max(pgh_id) FROM %s', v_relation) INTO v_max;
        PERFORM pghistory._citus_number_above(v_max);
    END LOOP;
END
$$;

-- The append-only guard of a distributed event table. Citus does not
-- propagate a CREATE TRIGGER that names TRUNCATE, so the guard is two
-- triggers: UPDATE and DELETE on every shard, and TRUNCATE on the
-- coordinator's table (a TRUNCATE of a distributed table goes through it).
CREATE OR REPLACE FUNCTION pghistory._citus_set_append_only(p_event_table regclass, p_append_only boolean)
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM set_config('citus.enable_unsafe_triggers', 'on', true);
    IF EXISTS (SELECT FROM pg_catalog.pg_trigger
                WHERE tgrelid = p_event_table AND tgname = 'pgh_append_only') THEN
        EXECUTE format('DROP TRIGGER pgh_append_only ON %s', p_event_table);
    END IF;
    IF EXISTS (SELECT FROM pg_catalog.pg_trigger
                WHERE tgrelid = p_event_table AND tgname = 'pgh_append_only_truncate') THEN
        EXECUTE format('DROP TRIGGER pgh_append_only_truncate ON %s', p_event_table);
    END IF;
    IF p_append_only THEN
        EXECUTE format('CREATE TRIGGER pgh_append_only BEFORE UPDATE OR DELETE ON %s '
                       'FOR EACH STATEMENT EXECUTE FUNCTION pghistory._refuse_history_change()',
                       p_event_table);
        EXECUTE format('CREATE TRIGGER pgh_append_only_truncate BEFORE TRUNCATE ON %s '
                       'FOR EACH STATEMENT EXECUTE FUNCTION pghistory._refuse_history_change()',
                       p_event_table);
    END IF;
END
$$;

-- Sets settings for the current transaction in the one form Citus passes
-- on to the nodes the transaction writes on: SET LOCAL statements, with
-- citus.propagate_set_commands = 'local' (set_config() is not passed on).
CREATE OR REPLACE FUNCTION pghistory._citus_set_local(p_names text[], p_values text[])
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    SET LOCAL citus.propagate_set_commands = 'local';
    FOR v_i IN 1 .. cardinality(p_names) LOOP
        EXECUTE format('SET LOCAL %s = %L', p_names[v_i], p_values[v_i]);
    END LOOP;
END
$$;


-- Statement level on a distributed table: the variables that hold the
-- transition rows of a tracker, read into arrays of the table's row type
-- (the executor Citus runs the INSERT through on a shard cannot see
-- transition tables). '' elsewhere.
CREATE OR REPLACE FUNCTION pghistory._citus_declare_rows(p_tracked regclass, p_operation text, p_row_level boolean)
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF p_row_level OR p_operation NOT IN ('insert', 'update', 'delete')
       OR (pghistory._citus_distribution(p_tracked)).kind IS DISTINCT FROM 'distributed' THEN
        RETURN '';
    END IF;
    RETURN (SELECT string_agg(format(E'\n    v_%1$s_rows %2$s[] := ARRAY(SELECT ROW(r.*)::%2$s FROM pgh_%1$s_rows AS r);',
                                     t, pghistory._qualified_name(p_tracked)), '')
              FROM unnest(CASE p_operation WHEN 'insert' THEN '{new}'::text[]
                               WHEN 'delete' THEN '{old}' ELSE '{old,new}' END) AS t);
END
$$;

-- What a tracker's function records, on a distributed table: read from
-- the arrays of _citus_declare_rows() at statement level; TRUNCATE on the
-- coordinator only (a shard that Citus moves gets a copy of the trigger,
-- and the coordinator's records the whole table). p_record elsewhere.
CREATE OR REPLACE FUNCTION pghistory._citus_record_rows(p_tracked regclass, p_operation text, p_row_level boolean,
                                                        p_record text)
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF (pghistory._citus_distribution(p_tracked)).kind IS DISTINCT FROM 'distributed' THEN
        RETURN p_record;
    ELSIF p_operation = 'truncate' THEN
        RETURN format(E'IF TG_TABLE_NAME <> %L THEN\n        RETURN NULL;\n    END IF;\n    ',
                      (SELECT c.relname FROM pg_catalog.pg_class AS c WHERE c.oid = p_tracked)) || p_record;
    ELSIF p_row_level THEN
        RETURN p_record;
    END IF;
    RETURN regexp_replace(p_record, 'pgh_(old|new)_rows', 'unnest(pgh_trigger.v_\1_rows)', 'g');
END
$$;
