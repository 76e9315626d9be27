
-- ---------------------------------------------------------------------------
-- track.sql: start, reconfigure and stop tracking a table
-- ---------------------------------------------------------------------------

-- Where the history of p_table goes: the event_table given to track()
-- (table or schema.table, in the table's schema by default), else the one
-- configured before (p_existing), else <table>_event beside the table.
-- Refuses names of more than two parts. Returns the schema and name; the
-- table may not exist yet.
CREATE OR REPLACE FUNCTION pghistory._event_table_name(p_table regclass, p_event_table text,
                                                       p_existing regclass,
                                                       OUT schema_name name, OUT table_name name)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_name text[];
BEGIN
    IF p_event_table IS NOT NULL THEN
        v_name := parse_ident(p_event_table);
        IF cardinality(v_name) > 2 THEN
            RAISE EXCEPTION 'pghistory: event_table % has too many dotted parts', p_event_table
                USING ERRCODE = 'invalid_name', HINT = 'Give it as table or schema.table.';
        END IF;
        schema_name := CASE WHEN cardinality(v_name) = 2 THEN v_name[1]
                            ELSE (SELECT n.nspname FROM pg_catalog.pg_class AS c
                                    JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
                                   WHERE c.oid = p_table) END;
        table_name := v_name[cardinality(v_name)];
        RETURN;
    END IF;
    SELECT n.nspname, CASE WHEN p_existing IS NULL THEN pghistory._fit_identifier(c.relname || '_event')
                           ELSE c.relname END
      INTO schema_name, table_name
      FROM pg_catalog.pg_class AS c JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
     WHERE c.oid = coalesce(p_existing, p_table);
END
$$;

-- Says, the first time a table is tracked, what a table without an object
-- identity (no primary key at all) goes without. Returns nothing.
CREATE OR REPLACE FUNCTION pghistory._notice_without_identity(p_table regclass)
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF pghistory._object_key(p_table, 'r') IS NULL THEN
        RAISE NOTICE 'pghistory: % has no primary key, so its events will have no pgh_obj_id', p_table
            USING DETAIL = 'Without it there are no per-object histories (events(obj_id)), no update diffs, and no '
                           'create_event(), revert(), backfill(), as_of(), changes(), blame() or revert_context().',
                  HINT = 'Give the table a primary key (then run track() again) for all of these.';
    END IF;
END
$$;

-- Starts tracking a table, or reconfigures it (calling it again with the
-- same arguments changes nothing). Creates the event table when it does not
-- exist, adds columns it lacks, and regenerates the trigger functions.
-- Refuses views, foreign and temporary tables, tables the caller does not
-- own, unknown columns, modes and labels, all before anything is written.
-- With backfill, records a baseline of the rows already there (backfill()).
-- With partition_by, the event table is range-partitioned on
-- pgh_created_at in steps of that size (converted, history and all, when
-- it exists unpartitioned: partition_convert.sql).
-- Returns the event table.
CREATE OR REPLACE FUNCTION pghistory.track(
    tbl         regclass,
    trackers    pghistory.tracker[] DEFAULT NULL,
    fields      text[]              DEFAULT NULL,
    exclude     text[]              DEFAULT NULL,
    event_table text                DEFAULT NULL,
    context     text                DEFAULT 'fk',
    level       text                DEFAULT 'statement',
    append_only boolean             DEFAULT true,
    backfill    boolean             DEFAULT false,
    partition_by interval           DEFAULT NULL)
RETURNS regclass
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_config pghistory.tracked;
    v_existing pghistory.tracked;
    v_name record;
    v_event_table regclass;
BEGIN
    -- every check first: nothing is written before they all pass
    PERFORM pghistory._check_trackable(track.tbl);
    PERFORM pghistory._check_track_modes(track.context, track.level, track.append_only);
    IF track.partition_by IS NOT NULL THEN
        PERFORM pghistory._check_partition_step(track.partition_by);
    END IF;
    v_config.tracked_table := track.tbl;
    v_config.trackers := coalesce(track.trackers, pghistory._default_trackers());
    v_config.fields := track.fields;
    v_config.exclude := track.exclude;
    v_config.context := track.context;
    v_config.level := track.level;
    v_config.append_only := track.append_only;
    PERFORM pghistory._check_trackers(track.tbl, v_config.trackers);
    PERFORM pghistory._check_tracked_columns(track.tbl, track.fields, track.exclude);
    PERFORM pghistory._citus_check_track(track.tbl, track.context, track.fields, track.exclude);
    SELECT * INTO v_existing FROM pghistory.tracked AS t WHERE t.tracked_table = track.tbl;
    SELECT * INTO v_name FROM pghistory._event_table_name(track.tbl, track.event_table, v_existing.event_table);
    v_event_table := to_regclass(format('%I.%I', v_name.schema_name, v_name.table_name));
    PERFORM pghistory._check_event_table(track.tbl, v_event_table, v_existing.event_table);
    PERFORM pghistory._citus_check_event_table(track.tbl, v_event_table);

    -- calling track() again with the same configuration changes nothing
    v_config.tracked_at := v_existing.tracked_at;
    v_config.event_table := v_event_table;
    v_config.trigger_functions := coalesce(v_existing.trigger_functions, '{}');
    IF v_existing IS NOT DISTINCT FROM v_config
       AND (track.partition_by IS NULL OR pghistory._partitioned_by(v_event_table, track.partition_by)) THEN
        IF track.backfill THEN
            PERFORM pghistory.backfill(track.tbl);
        END IF;
        RETURN v_event_table;
    END IF;
    IF v_existing.tracked_table IS NULL THEN
        PERFORM pghistory._notice_without_identity(track.tbl);
    END IF;

    -- no writes to the table while its triggers are swapped
    EXECUTE format('LOCK TABLE %s IN SHARE ROW EXCLUSIVE MODE', track.tbl);
    IF v_event_table IS NULL THEN
        v_event_table := pghistory._create_event_table(v_name.schema_name, v_name.table_name, track.tbl);
    END IF;
    IF track.partition_by IS NOT NULL THEN  -- moves the history there is
        v_event_table := pghistory._partition_event_table(v_event_table, track.partition_by);
    END IF;
    v_config.event_table := v_event_table;
    v_config.tracked_at := coalesce(v_existing.tracked_at, now());

    PERFORM pghistory._register(v_config);
    PERFORM pghistory._add_event_columns(v_config);
    PERFORM pghistory._citus_distribute_event_table(track.tbl, v_event_table);
    PERFORM pghistory._generate_triggers(track.tbl);
    PERFORM pghistory._set_append_only(v_event_table, v_config.append_only);
    IF track.backfill THEN
        PERFORM pghistory.backfill(track.tbl);
    END IF;
    RETURN v_event_table;
END
$$;
COMMENT ON FUNCTION pghistory.track(regclass, pghistory.tracker[], text[], text[], text, text, text, boolean, boolean, interval) IS
    'pghistory: start tracking a table, or reconfigure it: creates its event table, generates its trigger functions '
    '(owned by the table''s owner); for the table''s owner only. Returns the event table';

-- Stops tracking a table: its triggers go, its history stays (and stays
-- append-only) unless drop_events is true.
CREATE OR REPLACE FUNCTION pghistory.untrack(tbl regclass, drop_events boolean DEFAULT false)
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_event_table regclass;
BEGIN
    IF NOT pghistory._owns(untrack.tbl) THEN
        RAISE EXCEPTION 'pghistory: only the owner of % can untrack it', untrack.tbl
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'Run untrack() as the owner of the table or as a member of that role.';
    END IF;
    SELECT t.event_table INTO v_event_table FROM pghistory.tracked AS t WHERE t.tracked_table = untrack.tbl;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'pghistory: % is not tracked', untrack.tbl
            USING ERRCODE = 'undefined_object',
                  HINT = 'SELECT * FROM pghistory.tracking lists the tracked tables.';
    END IF;
    PERFORM pghistory._citus_prepare_ddl(untrack.tbl);
    PERFORM pghistory._drop_triggers(untrack.tbl);
    PERFORM pghistory._unregister(untrack.tbl);
    IF untrack.drop_events THEN
        EXECUTE format('DROP TABLE %s', v_event_table);
    END IF;
    PERFORM pghistory._grant_attach_context();
END
$$;
COMMENT ON FUNCTION pghistory.untrack(regclass, boolean) IS
    'pghistory: stop tracking a table; its history stays unless drop_events; for the table''s owner only';
