
-- ---------------------------------------------------------------------------
-- track_checks.sql: what track() checks before it writes anything
--
-- The table, the modes, the trackers and the event table, each refused
-- with a message naming the problem and a hint naming the fix.
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

-- The checks track() makes on the table itself: a permanent table (not a
-- view, foreign or temporary table) that the caller owns, whose owner may
-- hold trigger functions in schema pghistory. Returns nothing; raises
-- before anything is written.
CREATE OR REPLACE FUNCTION pghistory._check_trackable(p_table regclass)
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_relation record;
BEGIN
    SELECT c.relkind, c.relpersistence, c.relowner INTO v_relation
      FROM pg_catalog.pg_class AS c WHERE c.oid = p_table;
    IF v_relation.relkind NOT IN ('r', 'p') THEN
        RAISE EXCEPTION 'pghistory: % is a %, and only tables can be tracked', p_table,
                CASE v_relation.relkind WHEN 'v' THEN 'view' WHEN 'm' THEN 'materialized view'
                     WHEN 'f' THEN 'foreign table' WHEN 'S' THEN 'sequence' ELSE 'relation' END
            USING ERRCODE = 'wrong_object_type',
                  HINT = 'Track the tables the view reads from instead.';
    END IF;
    IF v_relation.relpersistence = 't' THEN
        RAISE EXCEPTION 'pghistory: % is a temporary table, whose history would vanish with it', p_table
            USING ERRCODE = 'wrong_object_type', HINT = 'Track permanent tables only.';
    END IF;
    IF NOT pghistory._owns(p_table) THEN
        RAISE EXCEPTION 'pghistory: only the owner of % can track it', p_table
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
END
$$;

-- The checks track() makes on its modes: context, level, append_only.
-- Returns nothing; raises before anything is written.
CREATE OR REPLACE FUNCTION pghistory._check_track_modes(p_context text, p_level text, p_append_only boolean)
RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF p_context IS NULL OR p_context NOT IN ('fk', 'json', 'none') THEN
        RAISE EXCEPTION 'pghistory: unknown context mode %', quote_nullable(p_context)
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'context is ''fk'' (events point at pghistory.context), ''json'' (events carry the metadata) or ''none''.';
    END IF;
    IF p_level IS NULL OR p_level NOT IN ('statement', 'row') THEN
        RAISE EXCEPTION 'pghistory: unknown level %', quote_nullable(p_level)
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'level is ''statement'' (one trigger call per statement) or ''row''.';
    END IF;
    IF p_append_only IS NULL THEN
        RAISE EXCEPTION 'pghistory: append_only must be true or false, not NULL'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
END
$$;

-- The checks track() makes on the event table p_event_table (NULL: it
-- does not exist yet) of p_table: that it is the one configured before
-- (p_existing), not another tracked table's, a pghistory event table, and
-- owned by the table's owner. Returns nothing; raises before anything is
-- written.
CREATE OR REPLACE FUNCTION pghistory._check_event_table(p_table regclass, p_event_table regclass,
                                                        p_existing regclass)
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_owner oid := (SELECT c.relowner FROM pg_catalog.pg_class AS c WHERE c.oid = p_table);
    v_event_owner oid := (SELECT c.relowner FROM pg_catalog.pg_class AS c WHERE c.oid = p_event_table);
BEGIN
    IF p_existing IS NOT NULL AND p_event_table IS DISTINCT FROM p_existing THEN
        RAISE EXCEPTION 'pghistory: % already records its history in %', p_table, p_existing
            USING ERRCODE = 'object_in_use',
                  HINT = 'Leave event_table out to keep it, or untrack the table first to start a new history.';
    END IF;
    IF p_event_table IS NULL THEN
        RETURN;
    END IF;
    IF EXISTS (SELECT FROM pghistory.tracked AS t
                WHERE t.event_table = p_event_table AND t.tracked_table <> p_table) THEN
        RAISE EXCEPTION 'pghistory: % is the event table of another tracked table', p_event_table
            USING ERRCODE = 'duplicate_table',
                  HINT = 'Choose another event_table.';
    END IF;
    IF (SELECT count(*) FROM pg_catalog.pg_attribute AS a
         WHERE a.attrelid = p_event_table AND NOT a.attisdropped
           AND a.attname IN ('pgh_id', 'pgh_created_at', 'pgh_label', 'pgh_obj_id')) < 4 THEN
        RAISE EXCEPTION 'pghistory: % exists and is not a pghistory event table', p_event_table
            USING ERRCODE = 'duplicate_table',
                  HINT = 'Choose another event_table, or rename the existing table.';
    END IF;
    -- the history of a table belongs to the table's owner
    IF v_event_owner <> v_owner THEN
        RAISE EXCEPTION 'pghistory: % belongs to %, and the event table of % must belong to its owner %',
                p_event_table, quote_ident(pg_get_userbyid(v_event_owner)),
                p_table, quote_ident(pg_get_userbyid(v_owner))
            USING ERRCODE = 'insufficient_privilege',
                  HINT = format('ALTER TABLE %s OWNER TO %I, or choose another event_table.',
                                p_event_table, pg_get_userbyid(v_owner));
    END IF;
END
$$;
