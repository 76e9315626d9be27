
-- ---------------------------------------------------------------------------
-- triggers.sql: the generated trigger functions and their triggers
--
-- Everything here is derived from a row of pghistory.tracked. The trigger
-- functions are generated as static SQL, one per tracker: all names, columns
-- and conditions are resolved now, so the functions do no catalog look-ups
-- and have no exception blocks. Open one with
--   \sf pghistory."public.orders/update"
-- ---------------------------------------------------------------------------

-- The name of the trigger function made for one tracker of a table:
-- "<schema>.<table>/<label>", in schema pghistory.
CREATE OR REPLACE FUNCTION pghistory._trigger_function_name(p_tracked regclass, p_label text)
RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT pghistory._fit_identifier(n.nspname || '.' || c.relname || '/' || p_label)
      FROM pg_catalog.pg_class AS c
      JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
     WHERE c.oid = p_tracked
$$;

-- The trigger functions made for a table that exist now: those its
-- registry row records ('manual' trackers have none).
CREATE OR REPLACE FUNCTION pghistory._tracker_functions(p_tracked regclass)
RETURNS SETOF regprocedure
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT p.oid::regprocedure
      FROM pghistory.tracked AS t
     CROSS JOIN unnest(t.trigger_functions) AS f
      JOIN pg_catalog.pg_proc AS p
        ON p.pronamespace = 'pghistory'::regnamespace AND p.proname = f
       AND p.pronargs = 0 AND p.prorettype = 'trigger'::regtype
     WHERE t.tracked_table = p_tracked
$$;

-- Drops the triggers and trigger functions pghistory made for a table:
-- the functions its registry row records, and every trigger that calls
-- them, wherever it is (a partition since detached, too).
CREATE OR REPLACE FUNCTION pghistory._drop_triggers(p_tracked regclass)
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_functions regprocedure[] := ARRAY(SELECT pghistory._tracker_functions(p_tracked));
    v_object record;
BEGIN
    FOR v_object IN
        SELECT t.tgname, t.tgrelid::regclass AS relation
          FROM pg_catalog.pg_trigger AS t
         WHERE t.tgfoid = ANY (v_functions::oid[])
           AND NOT t.tgisinternal
           AND t.tgparentid = 0   -- clones go with the trigger they were cloned from
    LOOP
        EXECUTE format('DROP TRIGGER %I ON %s', v_object.tgname, v_object.relation);
    END LOOP;
    FOR v_object IN SELECT f AS function FROM unnest(v_functions) AS f LOOP
        EXECUTE format('DROP FUNCTION %s', v_object.function);
    END LOOP;
END
$$;

-- Generates the trigger function and trigger of one tracker.
CREATE OR REPLACE FUNCTION pghistory._create_trigger(p_config pghistory.tracked, p_tracker pghistory.tracker)
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_table text := pghistory._qualified_name(p_config.tracked_table);
    v_function text := format('pghistory.%I', pghistory._trigger_function_name(p_config.tracked_table, p_tracker.label));
    v_trigger text := pghistory._fit_identifier('pgh_' || p_tracker.label);
    v_row_level boolean := p_config.level = 'row' AND p_tracker.operation <> 'truncate';
    v_columns text[] := ARRAY(SELECT column_name FROM pghistory._tracked_columns(
                                  p_config.tracked_table, p_config.fields, p_config.exclude));
    v_source text;        -- the row stored: new or old (NEW or OLD at row level)
    v_target text;        -- the INSERT's column list
    v_values text;        -- and what goes into it
    v_from text;          -- statement level: where the rows come from
    v_when text[];        -- what must hold for a row to be recorded
    v_declare text;
    v_attach text := '';
    v_metadata text;      -- the expression that reads the context's metadata
    v_insert text;
    v_timing text;
    v_relation regclass;
    -- the function belongs to the table's owner and runs with its rights
    v_owner oid := (SELECT c.relowner FROM pg_catalog.pg_class AS c WHERE c.oid = p_config.tracked_table);
    v_partitioned boolean := (SELECT c.relkind = 'p' FROM pg_catalog.pg_class AS c
                               WHERE c.oid = p_config.tracked_table);
BEGIN
    v_source := CASE WHEN v_row_level THEN upper(p_tracker.snapshot) ELSE p_tracker.snapshot END;

    -- The context, read once per call. This runs in every transaction that
    -- writes, so the settings are read inline, in their usual spellings,
    -- and the helpers are called only for the rest: current_context_id()
    -- reads a uuid written another way or refuses it, _context_metadata()
    -- reads metadata with blanks around it or refuses it.
    v_declare := '';
    v_metadata := E'CASE WHEN v_metadata_setting LIKE \'{%}\' THEN v_metadata_setting::jsonb'
               || E'\n                           ELSE pghistory._context_metadata() END';
    IF p_config.context IN ('fk', 'json') THEN
        v_declare := E'\n    v_context_setting text := current_setting(\'pghistory.context_id\', true);'
                  || E'\n    v_context_id uuid := CASE WHEN v_context_setting LIKE \'________-____-____-____-____________\''
                  || E'\n                               AND v_context_setting ~ \'^[-0-9a-f]+$\''
                  || E'\n                               AND length(replace(v_context_setting, \'-\', \'\')) = 32'
                  || E'\n                              THEN v_context_setting::uuid'
                  || E'\n                              WHEN v_context_setting <> \'\' THEN pghistory.current_context_id() END;'
                  || E'\n    v_metadata_setting text := current_setting(\'pghistory.context_metadata\', true);';
    END IF;
    IF p_config.context = 'json' THEN
        v_declare := v_declare || E'\n    v_context jsonb := CASE WHEN v_context_id IS NOT NULL THEN ' || v_metadata || ' END;';
    ELSIF p_config.context = 'fk' THEN
        -- Once per statement: an INSERT that does nothing when the row is
        -- there, then a refresh of its metadata (see _attach_context). An
        -- owner with the rights of pghistory.context's owner (a superuser,
        -- the extension's owner) writes the row itself: the SECURITY
        -- DEFINER hop through _attach_context() is a good part of what a
        -- one-row transaction pays. Other owners go through it. Decided
        -- from the rights of the table's owner, who owns this function.
        v_attach := E'\n    IF FOUND AND v_context_id IS NOT NULL THEN';
        IF pg_has_role(v_owner, (SELECT c.relowner FROM pg_catalog.pg_class AS c
                                  WHERE c.oid = 'pghistory.context'::regclass), 'USAGE') THEN
            v_declare := v_declare || E'\n    v_metadata jsonb;';
            v_attach := v_attach
                     || E'\n        v_metadata := ' || v_metadata || ';'
                     || E'\n        INSERT INTO pghistory.context (id, metadata, created_by)'
                     || E'\n        VALUES (v_context_id, v_metadata, session_user)'
                     || E'\n        ON CONFLICT (id) DO NOTHING;'
                     || E'\n        IF NOT FOUND THEN'
                     || E'\n            PERFORM pghistory._refresh_context(v_context_id, v_metadata);'
                     || E'\n        END IF;';
        ELSE
            v_attach := v_attach
                     || E'\n        PERFORM pghistory._attach_context(v_context_id, v_metadata_setting);';
        END IF;
        v_attach := v_attach || E'\n    END IF;';
    END IF;
    -- The variables are named through the block's label: under
    -- use_column, a tracked column called v_context_id would otherwise be
    -- read in their place.
    SELECT l.target, l.vals INTO v_target, v_values
      FROM pghistory._snapshot_lists(p_config, v_source, quote_literal(p_tracker.label),
                                     'pgh_trigger.v_context_id', 'pgh_trigger.v_context') AS l;

    -- when a row is recorded
    IF p_tracker.operation = 'update' THEN
        v_when := ARRAY[pghistory._changed_expression(p_config.tracked_table,
                          coalesce(p_tracker.changed, v_columns),
                          CASE WHEN v_row_level THEN 'OLD' ELSE 'old' END,
                          CASE WHEN v_row_level THEN 'NEW' ELSE 'new' END)];
    END IF;
    IF p_tracker.condition IS NOT NULL THEN
        v_when := v_when || format('(%s)', p_tracker.condition);
    END IF;

    IF v_row_level THEN
        v_insert := format(E'INSERT INTO %s (%s)\n    VALUES (%s);', p_config.event_table, v_target, v_values);
        -- Checked here rather than in the trigger's WHEN: a WHEN makes the
        -- trigger depend on the columns it names, and PostgreSQL would then
        -- refuse to drop them or change their type (follow_schema.sql
        -- follows those changes by regenerating this function).
        IF v_when IS NOT NULL THEN
            v_insert := format(E'IF %s THEN\n        INSERT INTO %s (%s)\n        VALUES (%s);\n    END IF;',
                               array_to_string(v_when, E'\n       AND '), p_config.event_table, v_target, v_values);
        END IF;
    ELSE
        v_from := CASE p_tracker.operation
            WHEN 'insert' THEN 'pgh_new_rows AS new'
            WHEN 'delete' THEN 'pgh_old_rows AS old'
            WHEN 'truncate' THEN 'ONLY ' || v_table || ' AS old'  -- its own rows, not its children's
            WHEN 'update' THEN pghistory._update_pairing(p_config.tracked_table, p_tracker.snapshot)
        END;
        IF p_tracker.operation = 'truncate' AND v_partitioned THEN
            -- Each partition TRUNCATE empties has this trigger and stores its
            -- own rows: read that partition alone (a scan of the whole tree
            -- filtered by tableoid would cost partitions x rows). Dynamic
            -- SQL, once per partition and statement: not a per-row path.
            SELECT l.target, l.vals INTO v_target, v_values
              FROM pghistory._snapshot_lists(p_config, v_source, quote_literal(p_tracker.label), '$1', '$2') AS l;
            v_insert := format(E'INSERT INTO %s (%s)\n    SELECT %s\n      FROM ONLY %%I.%%I AS old',
                               p_config.event_table, v_target, v_values);
            IF v_when IS NOT NULL THEN
                v_insert := v_insert || E'\n     WHERE ' || array_to_string(v_when, E'\n       AND ');
            END IF;
            v_insert := format(E'EXECUTE format(%L,\n                   TG_TABLE_SCHEMA, TG_TABLE_NAME)%s;%s',
                               v_insert,
                               CASE p_config.context WHEN 'fk' THEN E'\n        USING pgh_trigger.v_context_id'
                                    WHEN 'json' THEN E'\n        USING pgh_trigger.v_context_id, pgh_trigger.v_context'
                                    ELSE '' END,
                               -- EXECUTE does not set FOUND: the context row needs the count
                               CASE WHEN p_config.context = 'fk'
                                    THEN E'\n    GET DIAGNOSTICS v_rows = ROW_COUNT;' ELSE '' END);
            IF p_config.context = 'fk' THEN
                v_declare := v_declare || E'\n    v_rows bigint;';
                v_attach := replace(v_attach, 'IF FOUND AND', 'IF v_rows > 0 AND');
            END IF;
        ELSE
            v_insert := format(E'INSERT INTO %s (%s)\n    SELECT %s\n      FROM %s', p_config.event_table,
                               v_target, v_values, v_from);
            IF v_when IS NOT NULL THEN
                v_insert := v_insert || E'\n     WHERE ' || array_to_string(v_when, E'\n       AND ');
            END IF;
            v_insert := v_insert || ';';
        END IF;
    END IF;

    -- Transition tables have no statistics, so the planner guesses the
    -- pairing join's size wildly (millions of rows for thousands) and would
    -- JIT-compile it, which costs more than the whole insert: statement
    -- functions run with jit off. And PL/pgSQL keeps the plan for the life
    -- of the connection, made for the size of the statement that first
    -- used it: a nested loop chosen for a one-row UPDATE would make a later
    -- UPDATE of many rows quadratic. The pairing is always a hash join.
    EXECUTE format($sql$CREATE FUNCTION %s() RETURNS trigger
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp%s
AS %L$sql$, v_function,
        CASE WHEN v_row_level THEN ''
             WHEN p_tracker.operation = 'update' THEN E'\nSET jit = off\nSET enable_nestloop = off\nSET enable_mergejoin = off'
             ELSE E'\nSET jit = off' END,
        format(E'\n#variable_conflict use_column\n'
        '-- Generated by pghistory.track() for %s: tracker %L (%s, %s level).\n'
        '-- Regenerated by every track() and schema change of the table: do not edit.\n'
        '<<pgh_trigger>>\n'
        'DECLARE%s\n'
        'BEGIN\n'
        '    IF coalesce(current_setting(''pghistory.enabled'', true), '''') NOT IN ('''', ''on'')\n'
        '       AND NOT pghistory._enabled() THEN\n'
        '        RETURN NULL;\n'
        '    END IF;\n'
        '    %s%s\n'
        '    RETURN NULL;\n'
        'END pgh_trigger\n',
        -- names may hold line breaks, which would end the comment early
        translate(v_table, E'\n\r', '  '), translate(p_tracker.label, E'\n\r', '  '), p_tracker.operation,
        CASE WHEN v_row_level THEN 'row' ELSE 'statement' END,
        v_declare, v_insert, v_attach));
    -- trigger functions are called by triggers, not by people
    EXECUTE format('REVOKE ALL ON FUNCTION %s() FROM PUBLIC', v_function);
    -- whoever generates it (a superuser following the owner's ALTER TABLE,
    -- say), it runs as the table's owner: its conditions, the INSERT into
    -- the event table, whatever they reach, with that owner's rights and
    -- never more
    -- DROP EXTENSION pghistory takes it along (and, with CASCADE, its
    -- triggers): the table is never left with a trigger whose helpers are
    -- gone. Without CASCADE, the triggers make PostgreSQL refuse the drop.
    -- (A plain-script install has no extension: DROP SCHEMA removes it all.)
    IF EXISTS (SELECT FROM pg_catalog.pg_extension AS e WHERE e.extname = 'pghistory') THEN
        EXECUTE format('ALTER FUNCTION %s() DEPENDS ON EXTENSION pghistory', v_function);
    END IF;
    EXECUTE format('ALTER FUNCTION %s() OWNER TO %I', v_function, pg_get_userbyid(v_owner));

    v_timing := CASE p_tracker.operation
        WHEN 'insert' THEN 'AFTER INSERT'
        WHEN 'update' THEN 'AFTER UPDATE'
        WHEN 'delete' THEN 'AFTER DELETE'
        WHEN 'truncate' THEN 'BEFORE TRUNCATE'
    END;
    IF v_row_level THEN
        EXECUTE format('CREATE TRIGGER %I %s ON %s FOR EACH ROW EXECUTE FUNCTION %s()',
                       v_trigger, v_timing, v_table, v_function);
    ELSE
        -- Statement triggers fire only for the table a statement names, so a
        -- partitioned table gets them on every partition too (a write
        -- through the root fires the root's alone). TRUNCATE fires the
        -- triggers of every table it empties: its trigger sits on each table
        -- that holds rows, and stores the rows of that table only.
        FOR v_relation IN
            SELECT t.relid FROM pghistory._table_tree(p_config.tracked_table) AS t
             WHERE p_tracker.operation <> 'truncate' OR t.relkind = 'r'
        LOOP
            EXECUTE format('CREATE TRIGGER %I %s ON %s %s FOR EACH STATEMENT EXECUTE FUNCTION %s()',
                           v_trigger, v_timing, v_relation,
                           CASE p_tracker.operation
                               WHEN 'insert' THEN 'REFERENCING NEW TABLE AS pgh_new_rows'
                               WHEN 'update' THEN 'REFERENCING OLD TABLE AS pgh_old_rows NEW TABLE AS pgh_new_rows'
                               WHEN 'delete' THEN 'REFERENCING OLD TABLE AS pgh_old_rows'
                               ELSE '' END,
                           v_function);
        END LOOP;
    END IF;
END
$$;

-- What the trigger functions of a tracked table are generated from (its
-- name, its event table's, its columns and their types, its key, its
-- registry row), summed up in one line. _generate_triggers() writes it as
-- the functions' comment, so that a schema change can tell whether they are
-- out of date; pg_dump restores it with them.
CREATE OR REPLACE FUNCTION pghistory._generation_signature(p_tracked regclass)
RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT format('pghistory: generated for %s (%s)', pghistory._qualified_name(t.tracked_table),
                  md5(jsonb_build_object(
                      'table', pghistory._qualified_name(t.tracked_table),
                      'event_table', pghistory._qualified_name(t.event_table),
                      'columns', (SELECT jsonb_agg(jsonb_build_array(a.attname, format_type(a.atttypid, a.atttypmod))
                                                   ORDER BY a.attnum)
                                    FROM pg_catalog.pg_attribute AS a
                                   WHERE a.attrelid = t.tracked_table AND a.attnum > 0 AND NOT a.attisdropped),
                      'key', (SELECT k.column_name FROM pghistory._primary_key(t.tracked_table) AS k),
                      'trackers', to_jsonb(t.trackers), 'fields', t.fields, 'exclude', t.exclude,
                      'context', t.context, 'level', t.level)::text))
      FROM pghistory.tracked AS t
     WHERE t.tracked_table = p_tracked
$$;

-- (Re)generates every trigger of a tracked table from its registry row.
CREATE OR REPLACE FUNCTION pghistory._generate_triggers(p_tracked regclass)
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_config pghistory.tracked;
    v_tracker pghistory.tracker;
BEGIN
    -- the functions live in schema pghistory (track() checks it too, for the table's owner)
    IF NOT has_schema_privilege('pghistory', 'CREATE') THEN
        RAISE EXCEPTION 'pghistory: % may not create trigger functions in schema pghistory', quote_ident(current_user)
            USING ERRCODE = 'insufficient_privilege',
                  HINT = format('A superuser or the extension''s owner can GRANT CREATE ON SCHEMA pghistory TO %I.',
                                current_user);
    END IF;
    SELECT * INTO STRICT v_config FROM pghistory.tracked WHERE tracked_table = p_tracked;
    PERFORM pghistory._drop_triggers(p_tracked);
    v_config.trigger_functions := '{}';
    FOREACH v_tracker IN ARRAY v_config.trackers LOOP
        CONTINUE WHEN v_tracker.operation = 'manual';
        PERFORM pghistory._create_trigger(v_config, v_tracker);
        EXECUTE format('COMMENT ON FUNCTION pghistory.%I() IS %L',
                       pghistory._trigger_function_name(p_tracked, v_tracker.label),
                       pghistory._generation_signature(p_tracked));
        v_config.trigger_functions := v_config.trigger_functions
                                      || pghistory._trigger_function_name(p_tracked, v_tracker.label)::name;
    END LOOP;
    -- the registry records them: how they are found again
    PERFORM pghistory._register(v_config);
    PERFORM pghistory._grant_attach_context();
END
$$;
