
-- ---------------------------------------------------------------------------
-- trigger_parts.sql: the pieces a generated trigger function is made of
--
-- _create_trigger (triggers.sql) fills one template, the function's body,
-- with what these return: the DECLARE lines that read the context, the
-- statement that records the rows (row level, statement level, or a
-- partition's TRUNCATE), and the block that attaches the context row. Each
-- piece is a template with named slots (%%NAME%%) filled by
-- _fill_template(); identifiers in them come quoted (%I, quote_ident) and
-- literals as literals (%L, quote_literal). Nothing here runs when a row is
-- written: the output is static PL/pgSQL.
-- ---------------------------------------------------------------------------

-- Fills the slots %%NAME%% of a template with the values p_slots names, in
-- one pass: a value is never read as a template itself, whatever it holds.
-- Refuses a slot p_slots has no value for (a mistake in pghistory itself).
-- Returns the filled text.
CREATE OR REPLACE FUNCTION pghistory._fill_template(p_template text, p_slots jsonb)
RETURNS text
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_missing text;
BEGIN
    SELECT string_agg(DISTINCT m[1], ', ') INTO v_missing
      FROM regexp_matches(p_template, '%%([A-Z_]+)%%', 'g') AS m
     WHERE NOT p_slots ? m[1];
    IF v_missing IS NOT NULL THEN
        RAISE EXCEPTION 'pghistory: template slot % has no value', v_missing
            USING ERRCODE = 'internal_error', HINT = 'This is a bug in pghistory; please report it.';
    END IF;
    RETURN coalesce((SELECT string_agg(m[1] || coalesce(p_slots ->> m[3], ''), '' ORDER BY r.n)
                       FROM regexp_matches(p_template, '(.*?)(%%([A-Z_]+)%%|$)', 'g') WITH ORDINALITY AS r(m, n)),
                    '');
END
$$;

-- The expression a generated function reads the context's metadata with:
-- the setting in its usual spelling by a cast, anything else through
-- _context_metadata(), which reads it or refuses it.
CREATE OR REPLACE FUNCTION pghistory._metadata_expression()
RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT pghistory._fill_template($t$CASE WHEN %%USUAL%% THEN v_metadata_setting::jsonb
                           ELSE pghistory._context_metadata() END$t$,
               jsonb_build_object('USUAL', pghistory._usual_spelling('pghistory.context_metadata', 'v_metadata_setting')))
$$;

-- The DECLARE lines that read the context, once per call, for context mode
-- p_context ('fk', 'json', 'none'). This runs in every transaction that
-- writes, so the id is read inline in its usual spelling (_usual_spelling)
-- and current_context_id() is called only for the rest: an id written
-- another way (which it reads or refuses), or metadata set without an id
-- (the transaction's own id, see _transaction_context_id). 'json' also
-- reads the metadata the events carry. Returns '' for 'none'.
CREATE OR REPLACE FUNCTION pghistory._context_declare(p_context text)
RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN p_context IN ('fk', 'json') THEN pghistory._fill_template($t$
    v_context_setting text := current_setting('pghistory.context_id', true);
    v_metadata_setting text := current_setting('pghistory.context_metadata', true);
    v_context_id uuid := CASE WHEN %%USUAL%%
                              THEN v_context_setting::uuid
                              WHEN v_context_setting <> '' OR v_metadata_setting <> ''
                              THEN pghistory.current_context_id() END;$t$,
                jsonb_build_object('USUAL', pghistory._usual_spelling('pghistory.context_id', 'v_context_setting')))
                ELSE '' END
        || CASE WHEN p_context = 'json' THEN pghistory._fill_template($t$
    v_context jsonb := CASE WHEN v_context_id IS NOT NULL THEN %%METADATA%% END;$t$,
                    jsonb_build_object('METADATA', pghistory._metadata_expression())) ELSE '' END
$$;

-- Whether the functions of a table owned by p_owner write the context row
-- themselves: an owner with the rights of pghistory.context's owner (a
-- superuser, the extension's owner) may, and the SECURITY DEFINER hop
-- through _attach_context() is a good part of what a one-row transaction
-- pays. Other owners go through it.
CREATE OR REPLACE FUNCTION pghistory._writes_context_itself(p_owner oid)
RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT pg_has_role(p_owner, c.relowner, 'USAGE')
      FROM pg_catalog.pg_class AS c
     WHERE c.oid = 'pghistory.context'::regclass
$$;

-- The block that attaches the context row after the rows are recorded, in
-- context mode 'fk' (once per statement: an INSERT that does nothing when
-- the row is there, then a refresh of its metadata, see _attach_context).
-- p_inline: the function writes the row itself (_writes_context_itself);
-- p_found: the condition that rows were recorded (FOUND, or a row count
-- where the recording was dynamic SQL, which does not set FOUND).
-- Returns '' for the other modes.
CREATE OR REPLACE FUNCTION pghistory._attach_block(p_context text, p_inline boolean, p_found text)
RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN p_context <> 'fk' THEN ''
                WHEN p_inline THEN pghistory._fill_template($t$
    IF %%FOUND%% AND v_context_id IS NOT NULL THEN
        v_metadata := %%METADATA%%;
        INSERT INTO pghistory.context (id, metadata, created_by)
        VALUES (v_context_id, v_metadata, session_user)
        ON CONFLICT (id) DO NOTHING;
        IF NOT FOUND THEN
            PERFORM pghistory._refresh_context(v_context_id, v_metadata);
        END IF;
    END IF;$t$, jsonb_build_object('FOUND', p_found, 'METADATA', pghistory._metadata_expression()))
                ELSE pghistory._fill_template($t$
    IF %%FOUND%% AND v_context_id IS NOT NULL THEN
        PERFORM pghistory._attach_context(v_context_id, v_metadata_setting);
    END IF;$t$, jsonb_build_object('FOUND', p_found))
           END
$$;

-- What must hold for a row to be recorded by a tracker, as one boolean
-- expression over old and new (OLD and NEW at row level): for an update
-- tracker, that a watched column changed; and the tracker's condition.
-- Returns NULL when every row is recorded.
CREATE OR REPLACE FUNCTION pghistory._record_condition(p_config pghistory.tracked, p_tracker pghistory.tracker,
                                                       p_row_level boolean)
RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT nullif(array_to_string(
               CASE WHEN p_tracker.operation = 'update' THEN
                   ARRAY[pghistory._changed_expression(p_config.tracked_table,
                           coalesce(p_tracker.changed,
                                    ARRAY(SELECT c.column_name FROM pghistory._tracked_columns(
                                              p_config.tracked_table, p_config.fields, p_config.exclude) AS c)),
                           CASE WHEN p_row_level THEN 'OLD' ELSE 'old' END,
                           CASE WHEN p_row_level THEN 'NEW' ELSE 'new' END)]
               END || ('(' || p_tracker.condition || ')'),
               E'\n       AND '), '')
$$;

-- The INSERT ... SELECT of a statement-level function: the rows of p_from
-- (a transition table, the table itself, the update pairing) for which
-- p_when holds (NULL: all), without the closing semicolon.
CREATE OR REPLACE FUNCTION pghistory._insert_select(p_event_table regclass, p_target text, p_values text,
                                                    p_from text, p_when text)
RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT pghistory._fill_template($t$INSERT INTO %%EVENT_TABLE%% (%%TARGET%%)
    SELECT %%VALUES%%
      FROM %%FROM%%$t$,
               jsonb_build_object('EVENT_TABLE', p_event_table::text, 'TARGET', p_target,
                                  'VALUES', p_values, 'FROM', p_from))
        || coalesce(E'\n     WHERE ' || p_when, '')
$$;

-- The statement of an UPDATE tracker at statement level. PL/pgSQL keeps a
-- statement's plan for the life of the connection, made for the size of
-- the statement that first ran it: a nested loop chosen for a one-row
-- UPDATE would make a later UPDATE of many rows quadratic. So up to 32
-- rows pair with the join the planner likes (at that size any join is
-- fast, and a nested loop fastest), and more with a FULL JOIN, which is
-- never a nested loop, whatever size its kept plan was made for.
CREATE OR REPLACE FUNCTION pghistory._update_statement(p_config pghistory.tracked, p_tracker pghistory.tracker,
                                                       p_target text, p_values text, p_when text)
RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT pghistory._fill_template($t$IF EXISTS (SELECT FROM pgh_new_rows OFFSET 32) THEN
        -- many rows: paired by a join that is never a nested loop
        %%MANY%%;
    ELSE
        %%FEW%%;
    END IF;$t$, jsonb_build_object(
        'MANY', replace(pghistory._insert_select(
                            p_config.event_table, p_target, p_values,
                            pghistory._update_pairing(p_config.tracked_table, p_tracker.snapshot, true),
                            pghistory._update_keeps(p_config.tracked_table, p_tracker.snapshot, p_when)),
                        E'\n', E'\n    '),
        'FEW', replace(pghistory._insert_select(
                           p_config.event_table, p_target, p_values,
                           pghistory._update_pairing(p_config.tracked_table, p_tracker.snapshot, false), p_when),
                       E'\n', E'\n    ')))
$$;

-- The statement that records the rows a call of a tracker's function sees:
--   row level: an INSERT ... VALUES of OLD or NEW, inside an IF when there
--     is a condition (checked here rather than in the trigger's WHEN: a
--     WHEN makes the trigger depend on the columns it names, and PostgreSQL
--     would then refuse to drop them or change their type; follow_schema.sql
--     follows those changes by regenerating the function);
--   statement level: an INSERT ... SELECT from the transition table, the
--     update pairing, or for TRUNCATE the table's own rows (not its
--     children's);
--   TRUNCATE of a partitioned table: each partition TRUNCATE empties has
--     the trigger and stores its own rows, read from that partition alone
--     (a scan of the whole tree filtered by tableoid would cost partitions
--     x rows), through dynamic SQL once per partition and statement, not a
--     per-row path. EXECUTE does not set FOUND, so under context 'fk' it
--     counts the rows into v_rows for the context row.
-- The context variables are named through the block's label: under
-- use_column, a tracked column called v_context_id would otherwise be read
-- in their place.
CREATE OR REPLACE FUNCTION pghistory._record_rows(p_config pghistory.tracked, p_tracker pghistory.tracker,
                                                  p_row_level boolean, p_partitioned boolean)
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_source text := CASE WHEN p_row_level THEN upper(p_tracker.snapshot) ELSE p_tracker.snapshot END;
    v_when text := pghistory._record_condition(p_config, p_tracker, p_row_level);
    v_dynamic boolean := p_tracker.operation = 'truncate' AND p_partitioned;
    v_lists record;
BEGIN
    SELECT l.target, l.vals INTO v_lists
      FROM pghistory._snapshot_lists(p_config, v_source, quote_literal(p_tracker.label),
                                     CASE WHEN v_dynamic THEN '$1' ELSE 'pgh_trigger.v_context_id' END,
                                     CASE WHEN v_dynamic THEN '$2' ELSE 'pgh_trigger.v_context' END) AS l;
    IF p_tracker.operation = 'truncate' THEN  -- recorded on the coordinator of a Citus cluster
        SELECT l.target, l.vals INTO v_lists
          FROM pghistory._citus_coordinator_lists(p_config, 'old', v_lists.target, v_lists.vals) AS l;
    END IF;
    IF p_row_level THEN
        RETURN pghistory._fill_template(
                   CASE WHEN v_when IS NULL THEN $t$INSERT INTO %%EVENT_TABLE%% (%%TARGET%%)
    VALUES (%%VALUES%%);$t$
                   ELSE $t$IF %%WHEN%% THEN
        INSERT INTO %%EVENT_TABLE%% (%%TARGET%%)
        VALUES (%%VALUES%%);
    END IF;$t$ END,
                   jsonb_build_object('EVENT_TABLE', p_config.event_table::text, 'TARGET', v_lists.target,
                                      'VALUES', v_lists.vals, 'WHEN', v_when));
    ELSIF v_dynamic THEN
        RETURN pghistory._fill_template($t$EXECUTE format(%%QUERY%%,
                   TG_TABLE_SCHEMA, TG_TABLE_NAME)%%USING%%;%%COUNT%%$t$,
                   jsonb_build_object(
                       -- a format() string: % in names and the condition doubled, then the partition's slots
                       'QUERY', quote_literal(
                           replace(pghistory._insert_select(p_config.event_table, v_lists.target, v_lists.vals, '', NULL),
                                   '%', '%%')
                           || 'ONLY %I.%I AS old' || coalesce(E'\n     WHERE ' || replace(v_when, '%', '%%'), '')),
                       'USING', CASE p_config.context
                                    WHEN 'fk' THEN E'\n        USING pgh_trigger.v_context_id'
                                    WHEN 'json' THEN E'\n        USING pgh_trigger.v_context_id, pgh_trigger.v_context'
                                    ELSE '' END,
                       'COUNT', CASE WHEN p_config.context = 'fk'
                                     THEN E'\n    GET DIAGNOSTICS v_rows = ROW_COUNT;' ELSE '' END));
    ELSIF p_tracker.operation = 'update' THEN
        RETURN pghistory._update_statement(p_config, p_tracker, v_lists.target, v_lists.vals, v_when);
    ELSE
        RETURN pghistory._insert_select(p_config.event_table, v_lists.target, v_lists.vals,
                   CASE p_tracker.operation
                       WHEN 'insert' THEN 'pgh_new_rows AS new'
                       WHEN 'delete' THEN 'pgh_old_rows AS old'
                       WHEN 'truncate' THEN 'ONLY ' || pghistory._qualified_name(p_config.tracked_table) || ' AS old'
                   END, v_when) || ';';
    END IF;
END
$$;
