
-- ---------------------------------------------------------------------------
-- track.sql: start, reconfigure and stop tracking a table
-- ---------------------------------------------------------------------------

-- The checks track() makes on each tracker against the table.
CREATE OR REPLACE FUNCTION pghistory._check_trackers(p_table regclass, p_trackers pghistory.tracker[])
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_tracker pghistory.tracker;
    v_label text;
    v_unknown text;
BEGIN
    IF p_trackers = '{}' THEN
        RAISE EXCEPTION 'pghistory: trackers is empty, so nothing would be recorded'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Pass NULL for the default trackers (insert, update, delete, truncate), or name some.';
    END IF;
    SELECT t.label INTO v_label
      FROM unnest(p_trackers) AS t
     GROUP BY t.label HAVING count(*) > 1
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'pghistory: label "%" is registered twice for %', v_label, pghistory._qualified_name(p_table)
            USING ERRCODE = 'duplicate_object',
                  HINT = 'Give each tracker its own label, e.g. update_event(''status_changed'', changed => ''{status}'').';
    END IF;
    FOREACH v_tracker IN ARRAY p_trackers LOOP
        IF v_tracker IS NULL OR v_tracker.label IS NULL OR v_tracker.operation IS NULL
           OR v_tracker.operation NOT IN ('insert', 'update', 'delete', 'truncate', 'manual')
           OR v_tracker.snapshot IS NULL OR v_tracker.snapshot NOT IN ('new', 'old') THEN
            RAISE EXCEPTION 'pghistory: % is not a tracker', coalesce(v_tracker::text, 'NULL')
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'Build trackers with pghistory.insert_event(), update_event(), delete_event(), '
                             'truncate_event() or manual_event().';
        END IF;
        SELECT string_agg(format('%I', c), ', ') INTO v_unknown
          FROM unnest(v_tracker.changed) AS c
         WHERE NOT EXISTS (SELECT FROM pg_catalog.pg_attribute AS a
                            WHERE a.attrelid = p_table AND a.attname = c AND a.attnum > 0 AND NOT a.attisdropped);
        IF v_unknown IS NOT NULL THEN
            RAISE EXCEPTION 'pghistory: tracker "%" watches column %, which % does not have',
                    v_tracker.label, v_unknown, pghistory._qualified_name(p_table)
                USING ERRCODE = 'undefined_column',
                      HINT = 'changed names columns of the tracked table; names are case-sensitive.';
        END IF;
        -- A condition becomes part of the generated trigger function; let
        -- PostgreSQL check it now, as the WHEN of a throwaway row trigger,
        -- so a mistake is reported here rather than by the next write.
        IF v_tracker.condition IS NOT NULL THEN
            BEGIN
                EXECUTE format('CREATE TRIGGER pgh_check_condition AFTER %s ON %s FOR EACH ROW '
                               'WHEN (%s) EXECUTE FUNCTION pghistory._refuse_history_change()',
                               v_tracker.operation, p_table, v_tracker.condition);
                EXECUTE format('DROP TRIGGER pgh_check_condition ON %s', p_table);
            EXCEPTION WHEN OTHERS THEN
                RAISE EXCEPTION 'pghistory: the condition of tracker "%" is not valid: %', v_tracker.label, SQLERRM
                    USING ERRCODE = 'invalid_parameter_value',
                          HINT = 'A condition is an SQL boolean expression over OLD and NEW, as in a trigger''s WHEN: '
                                 'insert trackers see NEW only, delete trackers OLD only.';
            END;
        END IF;
    END LOOP;
END
$$;

-- Starts tracking a table, or reconfigures it (calling it again with the
-- same arguments changes nothing). Creates the event table when it does not
-- exist, adds columns it lacks, and regenerates the trigger functions.
-- Refuses views, foreign and temporary tables, tables the caller does not
-- own, unknown columns, modes and labels, all before anything is written.
-- With backfill, records a baseline of the rows already there (backfill()).
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
    backfill    boolean             DEFAULT false)
RETURNS regclass
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_relation record;
    v_config pghistory.tracked;
    v_existing pghistory.tracked;
    v_name text[];
    v_schema name;
    v_table_name name;
    v_event_table regclass;
BEGIN
    SELECT c.relkind, c.relpersistence, c.relowner, n.nspname, c.relname INTO v_relation
      FROM pg_catalog.pg_class AS c JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
     WHERE c.oid = track.tbl;
    IF v_relation.relkind NOT IN ('r', 'p') THEN
        RAISE EXCEPTION 'pghistory: % is a %, and only tables can be tracked', track.tbl,
                CASE v_relation.relkind WHEN 'v' THEN 'view' WHEN 'm' THEN 'materialized view'
                     WHEN 'f' THEN 'foreign table' WHEN 'S' THEN 'sequence' ELSE 'relation' END
            USING ERRCODE = 'wrong_object_type',
                  HINT = 'Track the tables the view reads from instead.';
    END IF;
    IF v_relation.relpersistence = 't' THEN
        RAISE EXCEPTION 'pghistory: % is a temporary table, whose history would vanish with it', track.tbl
            USING ERRCODE = 'wrong_object_type', HINT = 'Track permanent tables only.';
    END IF;
    IF NOT pghistory._owns(track.tbl) THEN
        RAISE EXCEPTION 'pghistory: only the owner of % can track it', track.tbl
            USING ERRCODE = 'insufficient_privilege',
                  HINT = format('Run track() as %I (the owner) or as a member of that role.',
                                pg_get_userbyid(v_relation.relowner));
    END IF;
    -- the trigger functions live in schema pghistory, and belong to the
    -- table's owner (a superuser may give them to any role)
    IF NOT has_schema_privilege('pghistory', 'CREATE')
       OR NOT (pghistory._is_superuser()
               OR has_schema_privilege(v_relation.relowner, 'pghistory', 'CREATE')) THEN
        RAISE EXCEPTION 'pghistory: % may not create trigger functions in schema pghistory',
                CASE WHEN has_schema_privilege('pghistory', 'CREATE')
                     THEN quote_ident(pg_get_userbyid(v_relation.relowner)) ELSE quote_ident(current_user) END
            USING ERRCODE = 'insufficient_privilege',
                  HINT = format('A superuser or the extension''s owner can GRANT CREATE ON SCHEMA pghistory TO %I.',
                                CASE WHEN has_schema_privilege('pghistory', 'CREATE')
                                     THEN pg_get_userbyid(v_relation.relowner) ELSE current_user END);
    END IF;
    IF track.context IS NULL OR track.context NOT IN ('fk', 'json', 'none') THEN
        RAISE EXCEPTION 'pghistory: unknown context mode %', quote_nullable(track.context)
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'context is ''fk'' (events point at pghistory.context), ''json'' (events carry the metadata) or ''none''.';
    END IF;
    IF track.level IS NULL OR track.level NOT IN ('statement', 'row') THEN
        RAISE EXCEPTION 'pghistory: unknown level %', quote_nullable(track.level)
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'level is ''statement'' (one trigger call per statement) or ''row''.';
    END IF;
    IF track.append_only IS NULL THEN
        RAISE EXCEPTION 'pghistory: append_only must be true or false, not NULL'
            USING ERRCODE = 'invalid_parameter_value';
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

    -- where the history goes: as given, as configured before, or <table>_event
    SELECT * INTO v_existing FROM pghistory.tracked AS t WHERE t.tracked_table = track.tbl;
    IF track.event_table IS NOT NULL THEN
        v_name := parse_ident(track.event_table);
        IF cardinality(v_name) > 2 THEN
            RAISE EXCEPTION 'pghistory: event_table % has too many dotted parts', track.event_table
                USING ERRCODE = 'invalid_name', HINT = 'Give it as table or schema.table.';
        END IF;
        v_schema := CASE WHEN cardinality(v_name) = 2 THEN v_name[1] ELSE v_relation.nspname END;
        v_table_name := v_name[cardinality(v_name)];
    ELSIF v_existing.event_table IS NOT NULL THEN
        SELECT n.nspname, c.relname INTO v_schema, v_table_name
          FROM pg_catalog.pg_class AS c JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
         WHERE c.oid = v_existing.event_table;
    ELSE
        v_schema := v_relation.nspname;
        v_table_name := pghistory._fit_identifier(v_relation.relname || '_event');
    END IF;
    v_event_table := to_regclass(format('%I.%I', v_schema, v_table_name));

    IF v_existing.event_table IS NOT NULL AND v_event_table IS DISTINCT FROM v_existing.event_table THEN
        RAISE EXCEPTION 'pghistory: % already records its history in %', track.tbl, v_existing.event_table
            USING ERRCODE = 'object_in_use',
                  HINT = 'Leave event_table out to keep it, or untrack the table first to start a new history.';
    END IF;
    IF v_event_table IS NOT NULL THEN
        IF EXISTS (SELECT FROM pghistory.tracked AS t
                    WHERE t.event_table = v_event_table AND t.tracked_table <> track.tbl) THEN
            RAISE EXCEPTION 'pghistory: % is the event table of another tracked table', v_event_table
                USING ERRCODE = 'duplicate_table',
                      HINT = 'Choose another event_table.';
        END IF;
        IF (SELECT count(*) FROM pg_catalog.pg_attribute AS a
             WHERE a.attrelid = v_event_table AND NOT a.attisdropped
               AND a.attname IN ('pgh_id', 'pgh_created_at', 'pgh_label', 'pgh_obj_id')) < 4 THEN
            RAISE EXCEPTION 'pghistory: % exists and is not a pghistory event table', v_event_table
                USING ERRCODE = 'duplicate_table',
                      HINT = 'Choose another event_table, or rename the existing table.';
        END IF;
        -- the history of a table belongs to the table's owner
        IF (SELECT c.relowner FROM pg_catalog.pg_class AS c WHERE c.oid = v_event_table)
           <> v_relation.relowner THEN
            RAISE EXCEPTION 'pghistory: % belongs to %, and the event table of % must belong to its owner %',
                    v_event_table,
                    quote_ident(pg_get_userbyid((SELECT c.relowner FROM pg_catalog.pg_class AS c
                                                  WHERE c.oid = v_event_table))),
                    track.tbl, quote_ident(pg_get_userbyid(v_relation.relowner))
                USING ERRCODE = 'insufficient_privilege',
                      HINT = format('ALTER TABLE %s OWNER TO %I, or choose another event_table.',
                                    v_event_table, pg_get_userbyid(v_relation.relowner));
        END IF;
    END IF;

    -- calling track() again with the same configuration changes nothing
    v_config.tracked_at := v_existing.tracked_at;
    v_config.event_table := v_event_table;
    v_config.trigger_functions := coalesce(v_existing.trigger_functions, '{}');
    IF v_existing IS NOT DISTINCT FROM v_config THEN
        IF track.backfill THEN
            PERFORM pghistory.backfill(track.tbl);
        END IF;
        RETURN v_event_table;
    END IF;

    -- say what a table without an object identity goes without
    IF v_existing.tracked_table IS NULL AND pghistory._object_key(track.tbl, 'r') IS NULL THEN
        RAISE NOTICE 'pghistory: % has %, so its events will have no pgh_obj_id', track.tbl,
                CASE WHEN EXISTS (SELECT FROM pg_catalog.pg_index AS i WHERE i.indrelid = track.tbl AND i.indisprimary)
                     THEN 'a composite primary key' ELSE 'no primary key' END
            USING DETAIL = 'Without it there are no per-object histories (events(obj_id)), no update diffs, and no '
                           'create_event(), revert(), backfill(), as_of(), changes(), blame() or revert_context().',
                  HINT = 'Give the table a single-column primary key (then run track() again) for all of these.';
    END IF;

    -- no writes to the table while its triggers are swapped
    EXECUTE format('LOCK TABLE %s IN SHARE ROW EXCLUSIVE MODE', track.tbl);
    IF v_event_table IS NULL THEN
        v_event_table := pghistory._create_event_table(v_schema, v_table_name, track.tbl);
    END IF;
    v_config.event_table := v_event_table;
    v_config.tracked_at := coalesce(v_existing.tracked_at, now());

    PERFORM pghistory._register(v_config);

    PERFORM pghistory._add_event_columns(v_config);
    PERFORM pghistory._generate_triggers(track.tbl);
    PERFORM pghistory._set_append_only(v_event_table, v_config.append_only);
    IF track.backfill THEN
        PERFORM pghistory.backfill(track.tbl);
    END IF;
    RETURN v_event_table;
END
$$;
COMMENT ON FUNCTION pghistory.track(regclass, pghistory.tracker[], text[], text[], text, text, text, boolean, boolean) IS
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
