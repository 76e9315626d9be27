-- Proposal measured by the bench (bench/run.py --variant zip=bench/variants/zip_pairing.sql):
-- the update trigger pairs old and new rows by position with two unnest()s in one
-- SELECT list (PostgreSQL runs them in lockstep) instead of joining two
-- row_number() subqueries (two sorts, spilling to disk past work_mem).  Arrays are
-- limited to 1 GB, so a statement updating tens of millions of rows would fail:
-- measured, not recommended as is.  A copy of pghistory._create_trigger from
-- extension/generate.sql at commit 629b2a3 with that change.
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
    v_insert text;
    v_timing text;
    v_relation regclass;
BEGIN
    v_source := CASE WHEN v_row_level THEN upper(p_tracker.snapshot) ELSE p_tracker.snapshot END;

    -- the row, the key it belongs to and its context, read once per call
    v_declare := '';
    IF p_config.context IN ('fk', 'json') THEN
        v_declare := E'\n    v_context_id uuid := pghistory.current_context_id();';
    END IF;
    IF p_config.context = 'fk' THEN
        v_attach := E'\n    IF FOUND AND v_context_id IS NOT NULL THEN\n'
                 || E'        PERFORM pghistory._attach_context(v_context_id);\n'
                 || E'    END IF;';
    ELSIF p_config.context = 'json' THEN
        v_declare := v_declare
                  || E'\n    v_context jsonb := CASE WHEN v_context_id IS NOT NULL THEN pghistory._context_metadata() END;';
    END IF;
    SELECT l.target, l.vals INTO v_target, v_values
      FROM pghistory._snapshot_lists(p_config, v_source, quote_literal(p_tracker.label),
                                     'v_context_id', 'v_context') AS l;

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
        -- refuse to drop them or change their type (schema_changes.sql
        -- follows those changes by regenerating this function).
        IF v_when IS NOT NULL THEN
            v_insert := format(E'IF %s THEN\n        INSERT INTO %s (%s)\n        VALUES (%s);\n    END IF;',
                               array_to_string(v_when, E'\n       AND '), p_config.event_table, v_target, v_values);
        END IF;
    ELSE
        v_from := CASE p_tracker.operation
            WHEN 'insert' THEN 'pgh_new_rows AS new'
            WHEN 'delete' THEN 'pgh_old_rows AS old'
            WHEN 'truncate' THEN v_table || ' AS old'
            -- Old and new rows are paired by their position in the
            -- transition tables, which PostgreSQL fills in step; pairing by
            -- key would lose updates that change the key.
            WHEN 'update' THEN format(E'(SELECT unnest(ARRAY(SELECT o::%1$s FROM pgh_old_rows AS o)) AS old_row,\n'
                            || E'              unnest(ARRAY(SELECT n::%1$s FROM pgh_new_rows AS n)) AS new_row) AS pgh_pair,\n', v_table)
                            || E'      LATERAL (SELECT (pgh_pair.old_row).*) AS old, LATERAL (SELECT (pgh_pair.new_row).*) AS new'
        END;
        IF p_tracker.operation = 'truncate' THEN
            v_when := v_when || 'old.tableoid = TG_RELID'::text;  -- the rows of the table being emptied
        END IF;
        v_insert := format(E'INSERT INTO %s (%s)\n    SELECT %s\n      FROM %s', p_config.event_table,
                           v_target, v_values, v_from);
        IF v_when IS NOT NULL THEN
            v_insert := v_insert || E'\n     WHERE ' || array_to_string(v_when, E'\n       AND ');
        END IF;
        v_insert := v_insert || ';';
    END IF;

    -- Transition tables have no statistics, so the planner guesses the
    -- pairing join's size wildly (millions of rows for thousands) and would
    -- JIT-compile it, which costs more than the whole insert: statement
    -- functions run with jit off.
    EXECUTE format($sql$CREATE FUNCTION %s() RETURNS trigger
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp%s
AS %L$sql$, v_function, CASE WHEN v_row_level THEN '' ELSE E'\nSET jit = off' END, format(E'\n#variable_conflict use_column\n'
        '-- Generated by pghistory.track() for %s: tracker %L (%s, %s level).\n'
        '-- Regenerated by every track() and schema change of the table: do not edit.\n'
        'DECLARE%s\n'
        'BEGIN\n'
        '    IF NOT pghistory._enabled() THEN\n'
        '        RETURN NULL;\n'
        '    END IF;\n'
        '    %s%s\n'
        '    RETURN NULL;\n'
        'END\n',
        v_table, p_tracker.label, p_tracker.operation,
        CASE WHEN v_row_level THEN 'row' ELSE 'statement' END,
        v_declare, v_insert, v_attach));
    -- trigger functions are called by triggers, not by people
    EXECUTE format('REVOKE ALL ON FUNCTION %s() FROM PUBLIC', v_function);

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
