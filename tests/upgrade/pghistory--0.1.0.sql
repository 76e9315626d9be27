-- pghistory: history tracking for any table, in SQL and PL/pgSQL.
--
-- This install script is assembled by the Makefile from the files in
-- extension/, one concern each, in dependency order:
--   types.sql         the tracker type
--   tables.sql        the context table and the registry of tracked tables
--   util.sql          small helpers: naming, quoting, column resolution
--   context.sql       the context GUCs and the SQL helpers around them
--   trackers.sql      the tracker constructors (insert_event, update_event, ...)
--   generate.sql      event tables and the per-table trigger functions
--   track.sql         track() and untrack()
--   create_event.sql  manual events
--   views.sql         the tracking view
--   browsing.sql      events(), aggregate_events, revert()
--   schema_changes.sql  event triggers that follow ALTER TABLE and DROP TABLE
-- Every function pins search_path and names its objects schema-qualified.

\echo Use "CREATE EXTENSION pghistory" to load this file. \quit

-- ---------------------------------------------------------------------------
-- types.sql: what a tracker is
-- ---------------------------------------------------------------------------

-- One event that track() records for a table. Build them with the
-- constructors in trackers.sql rather than by hand: those validate.
CREATE TYPE pghistory.tracker AS (
    label     text,    -- the event's pgh_label; unique per tracked table
    operation text,    -- insert | update | delete | truncate | manual
    condition text,    -- SQL boolean expression over OLD and NEW, or NULL
    changed   text[],  -- update: the columns whose change fires it (NULL: any tracked column)
    snapshot  text     -- which row is stored: 'new' (insert, update) or 'old' (update, delete, truncate)
);

-- ---------------------------------------------------------------------------
-- tables.sql: the extension's own tables
-- ---------------------------------------------------------------------------

-- Every role may call pghistory's functions (set_context() above all);
-- what they may read or change is decided by the grants on each table.
GRANT USAGE ON SCHEMA pghistory TO PUBLIC;

-- Who and why: one row per context an application started. Written by the
-- trigger functions (upsert, at most once per statement), never deleted.
-- The column names match django-pghistory's, so a database written by both
-- keeps one history.
CREATE TABLE pghistory.context (
    id         uuid        PRIMARY KEY,
    created_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    updated_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    metadata   jsonb       NOT NULL DEFAULT '{}'
);
COMMENT ON TABLE pghistory.context IS
    'pghistory: one row per application context (who, why); events point at it through pgh_context_id';

-- The registry: one row per tracked table, holding exactly what track() was
-- given. Trigger functions and event table columns are derived from it, so
-- regenerating them from here always gives the same result.
CREATE TABLE pghistory.tracked (
    tracked_table regclass            PRIMARY KEY,
    event_table   regclass            NOT NULL UNIQUE,
    trackers      pghistory.tracker[] NOT NULL,
    fields        text[],             -- as given; NULL: every column
    exclude       text[],             -- as given; NULL: none
    context       text                NOT NULL CHECK (context IN ('fk', 'json', 'none')),
    level         text                NOT NULL CHECK (level IN ('statement', 'row')),
    append_only   boolean             NOT NULL,
    tracked_at    timestamptz         NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE pghistory.tracked IS
    'pghistory: the tracked tables and their configuration (see the pghistory.tracking view)';

-- Whether the current role owns a table (directly or through a role it
-- belongs to): what it takes to change how the table is tracked.
CREATE FUNCTION pghistory._owns(p_table regclass)
RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT pg_has_role(current_user, c.relowner, 'USAGE')
      FROM pg_catalog.pg_class AS c
     WHERE c.oid = p_table
$$;

-- Everyone may see what is tracked; each role may register, change and
-- remove only the tables it owns (track() and untrack() run as their
-- caller and write here).
ALTER TABLE pghistory.tracked ENABLE ROW LEVEL SECURITY;
CREATE POLICY everyone_reads ON pghistory.tracked FOR SELECT USING (true);
CREATE POLICY owners_register ON pghistory.tracked FOR INSERT WITH CHECK (pghistory._owns(tracked_table));
CREATE POLICY owners_change ON pghistory.tracked FOR UPDATE
    USING (pghistory._owns(tracked_table)) WITH CHECK (pghistory._owns(tracked_table));
CREATE POLICY owners_remove ON pghistory.tracked FOR DELETE USING (pghistory._owns(tracked_table));
GRANT SELECT, INSERT, UPDATE, DELETE ON pghistory.tracked TO PUBLIC;

-- Both hold user data: pg_dump must dump their rows.
SELECT pg_catalog.pg_extension_config_dump('pghistory.context', '');
SELECT pg_catalog.pg_extension_config_dump('pghistory.tracked', '');

-- ---------------------------------------------------------------------------
-- util.sql: naming, quoting and column resolution used by track()
-- ---------------------------------------------------------------------------

-- A relation's name, always schema-qualified and quoted where needed:
-- public.orders, "Sales"."order items".
CREATE FUNCTION pghistory._qualified_name(p_relation regclass)
RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT format('%I.%I', n.nspname, c.relname)
      FROM pg_catalog.pg_class AS c
      JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
     WHERE c.oid = p_relation
$$;

-- An identifier in double quotes, always. format('%I') leaves words like
-- "if" or "loop" bare, which SQL accepts but PL/pgSQL reads as its own
-- keywords in NEW.if; generated trigger functions quote every column.
CREATE FUNCTION pghistory._quoted(p_name text)
RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT '"' || replace(p_name, '"', '""') || '"' $$;

-- Fits a generated name into an identifier (63 bytes). Names that are too
-- long keep their start and end in a hash of the full name, so two long
-- names that share a prefix still differ.
CREATE FUNCTION pghistory._fit_identifier(p_name text)
RETURNS text
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_name text := p_name;
BEGIN
    IF octet_length(v_name) <= 63 THEN
        RETURN v_name;
    END IF;
    -- cut by characters, not bytes, so a multibyte character is never split
    WHILE octet_length(v_name) > 54 LOOP
        v_name := left(v_name, -1);
    END LOOP;
    RETURN v_name || '_' || left(md5(p_name), 8);
END
$$;

-- The single-column primary key of a table: its name and type. No row when
-- the table has no primary key or a composite one (then pgh_obj_id is NULL).
CREATE FUNCTION pghistory._primary_key(p_table regclass)
RETURNS TABLE (column_name name, column_type text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT a.attname, format_type(a.atttypid, a.atttypmod)
      FROM pg_catalog.pg_index AS i
      JOIN pg_catalog.pg_attribute AS a
        ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
     WHERE i.indrelid = p_table
       AND i.indisprimary
       AND i.indnkeyatts = 1
$$;

-- Whether values of a type can be compared with IS DISTINCT FROM. Types
-- without an equality operator (json, xml, point, ...) are compared as text
-- instead. Probed once, at track() time.
CREATE FUNCTION pghistory._has_equality(p_type text)
RETURNS boolean
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    EXECUTE format('SELECT NULL::%s IS DISTINCT FROM NULL::%s', p_type, p_type);
    RETURN true;
EXCEPTION WHEN undefined_function THEN
    RETURN false;
END
$$;

-- The columns track() snapshots, in table order: every column, or `fields`,
-- or every column but `exclude`. Refuses unknown names and names that
-- collide with the event table's own pgh_* columns.
CREATE FUNCTION pghistory._tracked_columns(p_table regclass, p_fields text[], p_exclude text[])
RETURNS TABLE (column_name name, column_type text)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_unknown text[];
    v_reserved text[];
BEGIN
    IF p_fields IS NOT NULL AND p_exclude IS NOT NULL THEN
        RAISE EXCEPTION 'pghistory: give fields or exclude, not both'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'fields lists the columns to track; exclude lists the columns to leave out.';
    END IF;

    SELECT array_agg(f ORDER BY f) INTO v_unknown
      FROM unnest(coalesce(p_fields, p_exclude)) AS f
     WHERE NOT EXISTS (SELECT FROM pg_catalog.pg_attribute AS a
                        WHERE a.attrelid = p_table AND a.attname = f
                          AND a.attnum > 0 AND NOT a.attisdropped);
    IF v_unknown IS NOT NULL THEN
        RAISE EXCEPTION 'pghistory: % has no column %', pghistory._qualified_name(p_table),
                array_to_string(ARRAY(SELECT format('%I', u) FROM unnest(v_unknown) AS u), ', ')
            USING ERRCODE = 'undefined_column',
                  HINT = format('Check the names given in %s; column names are case-sensitive.',
                                CASE WHEN p_fields IS NOT NULL THEN 'fields' ELSE 'exclude' END);
    END IF;

    IF p_fields = '{}' THEN
        RAISE EXCEPTION 'pghistory: fields is empty, so there is nothing to track'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Name at least one column, or pass NULL to track every column.';
    END IF;

    SELECT array_agg(a.attname ORDER BY a.attnum) INTO v_reserved
      FROM pg_catalog.pg_attribute AS a
     WHERE a.attrelid = p_table AND a.attnum > 0 AND NOT a.attisdropped
       AND a.attname LIKE 'pgh\_%'
       AND (p_fields IS NULL OR a.attname = ANY (p_fields))
       AND (p_exclude IS NULL OR a.attname <> ALL (p_exclude));
    IF v_reserved IS NOT NULL THEN
        RAISE EXCEPTION 'pghistory: column % of % clashes with the event table''s own pgh_* columns',
                v_reserved[1], pghistory._qualified_name(p_table)
            USING ERRCODE = 'duplicate_column',
                  HINT = 'Leave it out with exclude => ''{' || v_reserved[1] || '}'', or rename it.';
    END IF;

    RETURN QUERY
        SELECT a.attname, format_type(a.atttypid, a.atttypmod)
          FROM pg_catalog.pg_attribute AS a
         WHERE a.attrelid = p_table AND a.attnum > 0 AND NOT a.attisdropped
           AND (p_fields IS NULL OR a.attname = ANY (p_fields))
           AND (p_exclude IS NULL OR a.attname <> ALL (p_exclude))
         ORDER BY a.attnum;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'pghistory: no column of % is left to track', pghistory._qualified_name(p_table)
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'exclude leaves out every column; track at least one.';
    END IF;
END
$$;

-- A table and, when it is partitioned, all its partitions, root first.
-- (pg_partition_tree() alone returns nothing for a plain table.)
CREATE FUNCTION pghistory._table_tree(p_table regclass)
RETURNS TABLE (relid regclass, relkind "char")
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT c.oid::regclass, c.relkind
      FROM pg_catalog.pg_class AS c
      LEFT JOIN pg_catalog.pg_partition_tree(p_table) AS t ON t.relid = c.oid
     WHERE c.oid = p_table OR t.relid IS NOT NULL
     ORDER BY coalesce(t.level, 0), c.oid
$$;

-- ---------------------------------------------------------------------------
-- context.sql: who and why
--
-- The application describes the current context in two settings, the same
-- ones django-pghistory uses:
--   pghistory.context_id        a uuid naming the context
--   pghistory.context_metadata  a JSON object describing it
-- and can switch recording off with pghistory.enabled = off. Trigger
-- functions read these once per statement (once per row at level 'row').
-- ---------------------------------------------------------------------------

-- Whether events are recorded now: pghistory.enabled unset or on.
CREATE FUNCTION pghistory._enabled()
RETURNS boolean
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_setting text := current_setting('pghistory.enabled', true);
BEGIN
    IF v_setting IS NULL OR v_setting = '' THEN
        RETURN true;
    END IF;
    CASE lower(v_setting)
        WHEN 'on', 'true', 'yes', '1', 't', 'y' THEN RETURN true;
        WHEN 'off', 'false', 'no', '0', 'f', 'n' THEN RETURN false;
        ELSE
            RAISE EXCEPTION 'pghistory.enabled is "%", which is neither on nor off', v_setting
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'SET pghistory.enabled = off to stop recording, on (or RESET) to record again.';
    END CASE;
END
$$;

-- The active context's id: pghistory.context_id, or NULL when none is set.
CREATE FUNCTION pghistory.current_context_id()
RETURNS uuid
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_setting text := current_setting('pghistory.context_id', true);
BEGIN
    IF v_setting IS NULL OR v_setting = '' THEN
        RETURN NULL;
    END IF;
    IF v_setting !~* '^\{?[0-9a-f]{8}-?([0-9a-f]{4}-?){3}[0-9a-f]{12}\}?$' THEN
        RAISE EXCEPTION 'pghistory.context_id is "%", which is not a uuid', left(v_setting, 100)
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Start contexts with pghistory.set_context(), or set pghistory.context_id to a uuid.';
    END IF;
    RETURN v_setting::uuid;
END
$$;

-- The active context's metadata: pghistory.context_metadata as a JSON
-- object ('{}' when unset). Anything else is an error, raised before the
-- trigger writes: a user's change is never recorded with metadata dropped.
-- (No exception block: this runs once per transaction and context, and a
-- subtransaction there would cost more than the rest of the check. Text
-- that looks like an object but is not valid JSON fails in the cast, with
-- PostgreSQL's own message.)
CREATE FUNCTION pghistory._context_metadata()
RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_setting text := current_setting('pghistory.context_metadata', true);
BEGIN
    IF v_setting IS NULL OR v_setting = '' THEN
        RETURN '{}';
    END IF;
    IF v_setting !~ '^\s*\{.*\}\s*$' THEN
        RAISE EXCEPTION 'pghistory.context_metadata must be a JSON object, not %', left(v_setting, 100)
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Set it to a JSON object such as {"user": "alice"}, or use pghistory.set_context().';
    END IF;
    RETURN v_setting::jsonb;
END
$$;

-- Makes sure the context row p_context_id exists and carries p_metadata
-- (the text of pghistory.context_metadata), for trigger functions whose
-- owner cannot write pghistory.context (SECURITY DEFINER: writers need no
-- privilege on it). The others do the same inline (see _create_trigger).
-- Called after events were written under p_context_id, once per
-- transaction and context: callers skip it while the transaction-local
-- marker pghistory._attached, set here, still names this id and metadata.
-- A rolled-back savepoint rolls the marker back with the row.
--
-- A new context (the common case) costs one INSERT that locks nothing but
-- its own new row. A context that exists already goes to
-- _refresh_context(), which changes it only when its metadata differs.
CREATE FUNCTION pghistory._attach_context(p_context_id uuid, p_metadata text)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    -- text that starts and ends with braces is cast at once; anything else
    -- (blanks around, unset, invalid) is _context_metadata()'s to read or refuse
    v_metadata jsonb := CASE WHEN p_metadata LIKE '{%}' THEN p_metadata::jsonb
                             ELSE pghistory._context_metadata() END;
BEGIN
    INSERT INTO pghistory.context (id, metadata)
    VALUES (p_context_id, v_metadata)
    ON CONFLICT (id) DO NOTHING;
    IF NOT FOUND THEN
        PERFORM pghistory._refresh_context(p_context_id, v_metadata);
    END IF;
    PERFORM set_config('pghistory._attached', p_context_id::text || coalesce(p_metadata, ''), true);
END
$$;

-- Sets the metadata of an existing context row, if it differs: the UPDATE
-- locks the row only when it changes it, so transactions sharing a context
-- id do not queue (or deadlock) on its row. enable_seqscan is off because
-- this plan is cached for the life of a connection: planned while
-- pghistory.context is still empty, it would keep scanning the whole table
-- for every context once the table has grown. Called where a context row
-- is attached, when its INSERT found the row there.
CREATE FUNCTION pghistory._refresh_context(p_context_id uuid, p_metadata jsonb)
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
SET enable_seqscan = off
AS $$
BEGIN
    UPDATE pghistory.context AS c
       SET metadata = p_metadata, updated_at = now()
     WHERE c.id = p_context_id AND c.metadata IS DISTINCT FROM p_metadata;
END
$$;

-- Starts a context, or merges p_metadata into the active one (its keys
-- win). Returns the context id. With p_is_local (the default) the context
-- ends with the current transaction; otherwise it lasts for the session
-- until pghistory.clear_context().
CREATE FUNCTION pghistory.set_context(metadata jsonb, is_local boolean DEFAULT true)
RETURNS uuid
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_context_id uuid := pghistory.current_context_id();
    v_metadata jsonb := metadata;
BEGIN
    IF v_metadata IS NULL OR jsonb_typeof(v_metadata) <> 'object' THEN
        RAISE EXCEPTION 'pghistory.set_context: metadata must be a JSON object, not %',
                coalesce('a JSON ' || jsonb_typeof(v_metadata), 'NULL')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Pass an object such as ''{"user": "alice"}''.';
    END IF;
    IF v_context_id IS NULL THEN
        v_context_id := gen_random_uuid();
    ELSE
        v_metadata := pghistory._context_metadata() || v_metadata;
    END IF;
    PERFORM set_config('pghistory.context_id', v_context_id::text, is_local);
    PERFORM set_config('pghistory.context_metadata', v_metadata::text, is_local);
    RETURN v_context_id;
END
$$;

-- Ends the active context, for the session and the current transaction.
CREATE FUNCTION pghistory.clear_context()
RETURNS void
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT set_config('pghistory.context_id', '', false),
           set_config('pghistory.context_metadata', '', false)
$$;

-- ---------------------------------------------------------------------------
-- trackers.sql: the tracker constructors
--
-- track() takes an array of these. Each validates what it can on its own;
-- column names and conditions are checked against the table by track().
-- ---------------------------------------------------------------------------

-- The checks every constructor shares: a label that is present and short
-- enough to name the trigger made for it.
CREATE FUNCTION pghistory._tracker(p_label text, p_operation text, p_condition text,
                                   p_changed text[], p_snapshot text)
RETURNS pghistory.tracker
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF p_label IS NULL OR btrim(p_label) = '' THEN
        RAISE EXCEPTION 'pghistory: a % tracker needs a label', p_operation
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Labels name events in pgh_label, such as ''insert'' or ''status_changed''.';
    END IF;
    IF p_snapshot NOT IN ('new', 'old') THEN
        RAISE EXCEPTION 'pghistory: snapshot must be ''new'' or ''old'', not %', quote_nullable(p_snapshot)
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = '''new'' stores the row after the update, ''old'' the row before it.';
    END IF;
    IF p_changed = '{}' THEN
        RAISE EXCEPTION 'pghistory: changed is empty, so tracker "%" would never fire', p_label
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Name the columns whose change records the event, or pass NULL for any tracked column.';
    END IF;
    RETURN ROW(p_label, p_operation, nullif(btrim(p_condition), ''), p_changed, p_snapshot)::pghistory.tracker;
END
$$;

-- After INSERT: stores the new row.
CREATE FUNCTION pghistory.insert_event(label text DEFAULT 'insert', condition text DEFAULT NULL)
RETURNS pghistory.tracker
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT pghistory._tracker(label, 'insert', condition, NULL, 'new') $$;

-- After UPDATE: stores the new row (snapshot => 'old': the row before).
-- Fires only when a tracked column changed, or one of `changed`.
CREATE FUNCTION pghistory.update_event(label text DEFAULT 'update', changed text[] DEFAULT NULL,
                                       condition text DEFAULT NULL, snapshot text DEFAULT 'new')
RETURNS pghistory.tracker
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT pghistory._tracker(label, 'update', condition, changed, snapshot) $$;

-- After DELETE: stores the deleted row.
CREATE FUNCTION pghistory.delete_event(label text DEFAULT 'delete', condition text DEFAULT NULL)
RETURNS pghistory.tracker
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT pghistory._tracker(label, 'delete', condition, NULL, 'old') $$;

-- Before TRUNCATE: stores every row the TRUNCATE removes.
CREATE FUNCTION pghistory.truncate_event(label text DEFAULT 'truncate')
RETURNS pghistory.tracker
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT pghistory._tracker(label, 'truncate', NULL, NULL, 'old') $$;

-- Recorded only by pghistory.create_event(table, obj_id, label).
CREATE FUNCTION pghistory.manual_event(label text)
RETURNS pghistory.tracker
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT pghistory._tracker(label, 'manual', NULL, NULL, 'new') $$;

-- What track() records when it is given no trackers.
CREATE FUNCTION pghistory._default_trackers()
RETURNS pghistory.tracker[]
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT ARRAY[pghistory.insert_event(), pghistory.update_event(),
                 pghistory.delete_event(), pghistory.truncate_event()]
$$;

-- ---------------------------------------------------------------------------
-- generate.sql: event tables and the trigger functions that fill them
--
-- Everything here is derived from a row of pghistory.tracked. The trigger
-- functions are generated as static SQL, one per tracker: all names, columns
-- and conditions are resolved now, so the functions do no catalog look-ups
-- and have no exception blocks. Open one with
--   \sf pghistory."public.orders/update"
-- ---------------------------------------------------------------------------

-- Creates the event table with pghistory's own columns; the tracked
-- columns are added by _add_event_columns().
CREATE FUNCTION pghistory._create_event_table(p_schema name, p_name name, p_tracked regclass)
RETURNS regclass
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_event_table regclass;
    v_obj_id_type text := coalesce((SELECT column_type FROM pghistory._primary_key(p_tracked)), 'text');
BEGIN
    EXECUTE format($sql$
        CREATE TABLE %I.%I (
            pgh_id         bigint      GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
            pgh_created_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
            pgh_label      text        NOT NULL,
            pgh_obj_id     %s
        )$sql$, p_schema, p_name, v_obj_id_type);
    v_event_table := format('%I.%I', p_schema, p_name)::regclass;
    EXECUTE format('CREATE INDEX ON %s (pgh_obj_id, pgh_id)', v_event_table);
    EXECUTE format('COMMENT ON TABLE %s IS %L', v_event_table,
                   'pghistory: events of ' || pghistory._qualified_name(p_tracked));
    -- history is read through grants given on purpose, never by default
    EXECUTE format('REVOKE ALL ON %s FROM PUBLIC', v_event_table);
    RETURN v_event_table;
END
$$;

-- Brings an event table up to a configuration: adds the tracked columns it
-- lacks (typed like the tracked table's, without constraints) and the
-- context columns the mode needs. Never drops anything: history stays.
CREATE FUNCTION pghistory._add_event_columns(p_config pghistory.tracked)
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_column record;
BEGIN
    IF p_config.context IN ('fk', 'json') AND NOT EXISTS (
            SELECT FROM pg_catalog.pg_attribute
             WHERE attrelid = p_config.event_table AND attname = 'pgh_context_id' AND NOT attisdropped) THEN
        EXECUTE format('ALTER TABLE %s ADD COLUMN pgh_context_id uuid', p_config.event_table);
        EXECUTE format('CREATE INDEX ON %s (pgh_context_id)', p_config.event_table);
    END IF;
    IF p_config.context = 'json' AND NOT EXISTS (
            SELECT FROM pg_catalog.pg_attribute
             WHERE attrelid = p_config.event_table AND attname = 'pgh_context' AND NOT attisdropped) THEN
        EXECUTE format('ALTER TABLE %s ADD COLUMN pgh_context jsonb', p_config.event_table);
    END IF;
    FOR v_column IN
        SELECT c.column_name, c.column_type,
               CASE WHEN a.attcollation <> 0 AND a.attcollation <> t.typcollation
                    THEN format(' COLLATE %I.%I', cn.nspname, co.collname) ELSE '' END AS collation
          FROM pghistory._tracked_columns(p_config.tracked_table, p_config.fields, p_config.exclude) AS c
          JOIN pg_catalog.pg_attribute AS a
            ON a.attrelid = p_config.tracked_table AND a.attname = c.column_name
          JOIN pg_catalog.pg_type AS t ON t.oid = a.atttypid
          LEFT JOIN pg_catalog.pg_collation AS co ON co.oid = a.attcollation
          LEFT JOIN pg_catalog.pg_namespace AS cn ON cn.oid = co.collnamespace
         WHERE NOT EXISTS (SELECT FROM pg_catalog.pg_attribute AS e
                            WHERE e.attrelid = p_config.event_table AND e.attname = c.column_name
                              AND e.attnum > 0 AND NOT e.attisdropped)
         ORDER BY a.attnum
    LOOP
        EXECUTE format('ALTER TABLE %s ADD COLUMN %I %s%s', p_config.event_table,
                       v_column.column_name, v_column.column_type, v_column.collation);
    END LOOP;
END
$$;

-- The name of the trigger function made for one tracker of a table:
-- "<schema>.<table>/<label>", in schema pghistory.
CREATE FUNCTION pghistory._trigger_function_name(p_tracked regclass, p_label text)
RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT pghistory._fit_identifier(n.nspname || '.' || c.relname || '/' || p_label)
      FROM pg_catalog.pg_class AS c
      JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
     WHERE c.oid = p_tracked
$$;

-- The trigger functions of the trackers in a table's registry row that
-- exist now ('manual' trackers have none).
CREATE FUNCTION pghistory._tracker_functions(p_tracked regclass)
RETURNS SETOF regprocedure
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT p.oid::regprocedure
      FROM pghistory.tracked AS t
     CROSS JOIN unnest(t.trackers) AS k
      JOIN pg_catalog.pg_proc AS p
        ON p.pronamespace = 'pghistory'::regnamespace
       AND p.proname = pghistory._trigger_function_name(p_tracked, k.label)
       AND p.pronargs = 0
     WHERE t.tracked_table = p_tracked AND k.operation <> 'manual'
$$;

-- Drops the triggers and trigger functions pghistory made for a table.
CREATE FUNCTION pghistory._drop_triggers(p_tracked regclass)
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_trigger record;
    v_functions regprocedure[] := '{}';
BEGIN
    FOR v_trigger IN
        SELECT t.tgname, t.tgrelid::regclass AS relation, t.tgfoid::regprocedure AS function
          FROM pghistory._table_tree(p_tracked) AS r
          JOIN pg_catalog.pg_trigger AS t ON t.tgrelid = r.relid
          JOIN pg_catalog.pg_proc AS p ON p.oid = t.tgfoid
         WHERE NOT t.tgisinternal
           AND t.tgparentid = 0   -- clones go with the trigger they were cloned from
           AND p.pronamespace = 'pghistory'::regnamespace
           AND p.proname <> '_refuse_history_change'
    LOOP
        EXECUTE format('DROP TRIGGER %I ON %s', v_trigger.tgname, v_trigger.relation);
        v_functions := v_functions || v_trigger.function;
    END LOOP;
    -- and those that have no trigger yet: a TRUNCATE tracker's function
    -- while a partitioned table has no partition
    v_functions := v_functions || ARRAY(SELECT pghistory._tracker_functions(p_tracked));
    FOR v_trigger IN SELECT DISTINCT f AS function FROM unnest(v_functions) AS f LOOP
        EXECUTE format('DROP FUNCTION %s', v_trigger.function);
    END LOOP;
END
$$;

-- A comparison of two rows' columns that holds when any of them differs.
-- Types without an equality operator (json, xml, point) compare as text.
CREATE FUNCTION pghistory._changed_expression(p_tracked regclass, p_columns text[],
                                              p_old text, p_new text)
RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT format('(%s) IS DISTINCT FROM (%s)',
                  string_agg(p_old || '.' || pghistory._quoted(a.attname) || c.cast_to, ', ' ORDER BY a.attnum),
                  string_agg(p_new || '.' || pghistory._quoted(a.attname) || c.cast_to, ', ' ORDER BY a.attnum))
      FROM pg_catalog.pg_attribute AS a
     CROSS JOIN LATERAL (
           SELECT CASE WHEN pghistory._has_equality(format_type(a.atttypid, a.atttypmod))
                       THEN '' ELSE '::text' END AS cast_to) AS c
     WHERE a.attrelid = p_tracked AND a.attname = ANY (p_columns)
       AND a.attnum > 0 AND NOT a.attisdropped
$$;

-- The column list and the value list of the INSERT that stores a snapshot:
-- pgh_label, pgh_obj_id, the context columns of the mode, and the tracked
-- columns read from p_source (a row alias: new, old, NEW, OLD). The label
-- and context values are SQL expressions given by the caller.
CREATE FUNCTION pghistory._snapshot_lists(p_config pghistory.tracked, p_source text, p_label text,
                                          p_context_id text, p_context text,
                                          OUT target text, OUT vals text)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_pk name := (SELECT column_name FROM pghistory._primary_key(p_config.tracked_table));
    v_columns text[] := ARRAY(SELECT column_name FROM pghistory._tracked_columns(
                                  p_config.tracked_table, p_config.fields, p_config.exclude));
BEGIN
    target := 'pgh_label, pgh_obj_id';
    vals := p_label || ', ' || CASE WHEN v_pk IS NULL THEN 'NULL' ELSE p_source || '.' || pghistory._quoted(v_pk) END;
    IF p_config.context IN ('fk', 'json') THEN
        target := target || ', pgh_context_id';
        vals := vals || ', ' || p_context_id;
    END IF;
    IF p_config.context = 'json' THEN
        target := target || ', pgh_context';
        vals := vals || ', ' || p_context;
    END IF;
    target := target || ', ' || array_to_string(ARRAY(SELECT pghistory._quoted(c) FROM unnest(v_columns) AS c), ', ');
    vals := vals || ', ' || array_to_string(ARRAY(SELECT p_source || '.' || pghistory._quoted(c) FROM unnest(v_columns) AS c), ', ');
END
$$;

-- The FROM clause that pairs each row an UPDATE statement changed with its
-- other version, for the update tracker storing p_snapshot ('new' or 'old').
-- Rows are paired by primary key, with a hash join: the old row of a key
-- is the one that had that key before the statement. A row whose key the
-- statement changed has no partner, and is kept with the other side NULL:
-- its tracked columns differ from NULLs, so the default tracker records
-- it, and a condition sees it as a row that had no old version. Tables
-- without a single-column key, or whose key type has no equality operator
-- in pg_catalog, pair by position in the transition tables instead, which
-- PostgreSQL fills in step (two sorts: slower on large statements).
CREATE FUNCTION pghistory._update_pairing(p_tracked regclass, p_snapshot text)
RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce(
        (SELECT format(E'pgh_%1$s_rows AS %1$s\n'
                        '      LEFT JOIN pgh_%2$s_rows AS %2$s ON %2$s.%3$s = %1$s.%3$s',
                       p_snapshot, CASE p_snapshot WHEN 'new' THEN 'old' ELSE 'new' END,
                       pghistory._quoted(k.column_name))
           FROM pghistory._primary_key(p_tracked) AS k
          WHERE pghistory._has_equality(k.column_type)),
        E'(SELECT row_number() OVER () AS pgh_row, * FROM pgh_old_rows) AS old\n'
        '      JOIN (SELECT row_number() OVER () AS pgh_row, * FROM pgh_new_rows) AS new USING (pgh_row)')
$$;

-- Generates the trigger function and trigger of one tracker.
CREATE FUNCTION pghistory._create_trigger(p_config pghistory.tracked, p_tracker pghistory.tracker)
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
        -- Once per transaction and context (see _attach_context). An owner
        -- with the rights of pghistory.context's owner (a superuser, the
        -- extension's owner) writes the row itself: the SECURITY DEFINER
        -- hop through _attach_context() is a good part of what a one-row
        -- transaction pays. Other owners go through it.
        v_attach := E'\n    IF FOUND AND v_context_id IS NOT NULL'
                 || E'\n       AND current_setting(\'pghistory._attached\', true) IS DISTINCT FROM'
                 || E'\n           v_context_id::text || coalesce(v_metadata_setting, \'\') THEN';
        IF pg_has_role((SELECT c.relowner FROM pg_catalog.pg_class AS c
                         WHERE c.oid = 'pghistory.context'::regclass), 'USAGE') THEN
            v_declare := v_declare || E'\n    v_metadata jsonb;\n    v_attached text;';
            v_attach := v_attach
                     || E'\n        v_metadata := ' || v_metadata || ';'
                     || E'\n        INSERT INTO pghistory.context (id, metadata)'
                     || E'\n        VALUES (v_context_id, v_metadata)'
                     || E'\n        ON CONFLICT (id) DO NOTHING;'
                     || E'\n        IF NOT FOUND THEN'
                     || E'\n            PERFORM pghistory._refresh_context(v_context_id, v_metadata);'
                     || E'\n        END IF;'
                     || E'\n        v_attached := set_config(\'pghistory._attached\','
                     || E'\n                                 v_context_id::text || coalesce(v_metadata_setting, \'\'), true);';
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
            WHEN 'update' THEN pghistory._update_pairing(p_config.tracked_table, p_tracker.snapshot)
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
CREATE FUNCTION pghistory._generation_signature(p_tracked regclass)
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
CREATE FUNCTION pghistory._generate_triggers(p_tracked regclass)
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_config pghistory.tracked;
    v_tracker pghistory.tracker;
BEGIN
    SELECT * INTO STRICT v_config FROM pghistory.tracked WHERE tracked_table = p_tracked;
    PERFORM pghistory._drop_triggers(p_tracked);
    FOREACH v_tracker IN ARRAY v_config.trackers LOOP
        CONTINUE WHEN v_tracker.operation = 'manual';
        PERFORM pghistory._create_trigger(v_config, v_tracker);
        EXECUTE format('COMMENT ON FUNCTION pghistory.%I() IS %L',
                       pghistory._trigger_function_name(p_tracked, v_tracker.label),
                       pghistory._generation_signature(p_tracked));
    END LOOP;
END
$$;

-- ---------------------------------------------------------------------------
-- track.sql: start, reconfigure and stop tracking a table
-- ---------------------------------------------------------------------------

-- Statement trigger on event tables: history is append-only unless a
-- maintenance transaction says otherwise (SET LOCAL
-- pghistory.allow_history_changes = on), e.g. to delete old history.
CREATE FUNCTION pghistory._refuse_history_change()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF lower(coalesce(current_setting('pghistory.allow_history_changes', true), '')) IN ('on', 'true', '1') THEN
        RETURN NULL;
    END IF;
    RAISE EXCEPTION 'pghistory: %.% is append-only history; % is refused', quote_ident(TG_TABLE_SCHEMA),
            quote_ident(TG_TABLE_NAME), TG_OP
        USING ERRCODE = 'insufficient_privilege',
              HINT = 'To remove old history on purpose, do it in a transaction that first runs '
                     'SET LOCAL pghistory.allow_history_changes = on.';
END
$$;

-- The checks track() makes on each tracker against the table.
CREATE FUNCTION pghistory._check_trackers(p_table regclass, p_trackers pghistory.tracker[])
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
-- Returns the event table.
CREATE FUNCTION pghistory.track(
    tbl         regclass,
    trackers    pghistory.tracker[] DEFAULT NULL,
    fields      text[]              DEFAULT NULL,
    exclude     text[]              DEFAULT NULL,
    event_table text                DEFAULT NULL,
    context     text                DEFAULT 'fk',
    level       text                DEFAULT 'statement',
    append_only boolean             DEFAULT true)
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
    -- the trigger functions live in schema pghistory
    IF NOT has_schema_privilege('pghistory', 'CREATE') THEN
        RAISE EXCEPTION 'pghistory: % may not create trigger functions in schema pghistory', current_user
            USING ERRCODE = 'insufficient_privilege',
                  HINT = format('A superuser or the extension''s owner can GRANT CREATE ON SCHEMA pghistory TO %I.',
                                current_user);
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
    PERFORM pghistory._tracked_columns(track.tbl, track.fields, track.exclude);

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
    END IF;

    -- calling track() again with the same configuration changes nothing
    v_config.tracked_at := v_existing.tracked_at;
    v_config.event_table := v_event_table;
    IF v_existing IS NOT DISTINCT FROM v_config THEN
        RETURN v_event_table;
    END IF;

    -- no writes to the table while its triggers are swapped
    EXECUTE format('LOCK TABLE %s IN SHARE ROW EXCLUSIVE MODE', track.tbl);
    IF v_event_table IS NULL THEN
        v_event_table := pghistory._create_event_table(v_schema, v_table_name, track.tbl);
    END IF;
    v_config.event_table := v_event_table;
    v_config.tracked_at := coalesce(v_existing.tracked_at, now());

    INSERT INTO pghistory.tracked AS t VALUES (v_config.*)
    ON CONFLICT (tracked_table) DO UPDATE
       SET trackers = excluded.trackers, fields = excluded.fields, exclude = excluded.exclude,
           context = excluded.context, level = excluded.level, append_only = excluded.append_only;

    PERFORM pghistory._add_event_columns(v_config);
    PERFORM pghistory._generate_triggers(track.tbl);
    PERFORM pghistory._set_append_only(v_event_table, v_config.append_only);
    RETURN v_event_table;
END
$$;

-- Adds or removes the append-only guard of an event table.
CREATE FUNCTION pghistory._set_append_only(p_event_table regclass, p_append_only boolean)
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF EXISTS (SELECT FROM pg_catalog.pg_trigger
                WHERE tgrelid = p_event_table AND tgname = 'pgh_append_only') THEN
        EXECUTE format('DROP TRIGGER pgh_append_only ON %s', p_event_table);
    END IF;
    IF p_append_only THEN
        EXECUTE format('CREATE TRIGGER pgh_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON %s '
                       'FOR EACH STATEMENT EXECUTE FUNCTION pghistory._refuse_history_change()',
                       p_event_table);
    END IF;
END
$$;

-- Stops tracking a table: its triggers go, its history stays (and stays
-- append-only) unless drop_events is true.
CREATE FUNCTION pghistory.untrack(tbl regclass, drop_events boolean DEFAULT false)
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
    DELETE FROM pghistory.tracked AS t WHERE t.tracked_table = untrack.tbl;
    IF untrack.drop_events THEN
        EXECUTE format('DROP TABLE %s', v_event_table);
    END IF;
END
$$;

-- ---------------------------------------------------------------------------
-- create_event.sql: events recorded on purpose
-- ---------------------------------------------------------------------------

-- Snapshots the current row of tbl whose primary key is obj_id under a
-- label registered for the table (usually a manual_event), linked to the
-- active context. obj_id is given as text here; the overload below takes
-- it in the key's own type.
-- Refuses untracked tables, unknown labels, tables without a single-column
-- primary key and keys that match no row. Returns the event's pgh_id.
CREATE FUNCTION pghistory.create_event(tbl regclass, obj_id text, label text)
RETURNS bigint
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_config pghistory.tracked;
    v_labels text[];
    v_pk record;
    v_lists record;
    v_context_id uuid := pghistory.current_context_id();
    v_context jsonb;
    v_pgh_id bigint;
BEGIN
    SELECT * INTO v_config FROM pghistory.tracked AS t WHERE t.tracked_table = create_event.tbl;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'pghistory: % is not tracked', create_event.tbl
            USING ERRCODE = 'undefined_object',
                  HINT = 'Track it first: SELECT pghistory.track(...).';
    END IF;
    v_labels := ARRAY(SELECT t.label FROM unnest(v_config.trackers) AS t);
    IF create_event.label IS NULL OR NOT (create_event.label = ANY (v_labels)) THEN
        RAISE EXCEPTION 'pghistory: % has no tracker labelled %', create_event.tbl, quote_nullable(create_event.label)
            USING ERRCODE = 'undefined_object',
                  DETAIL = format('Its labels are: %s.', array_to_string(v_labels, ', ')),
                  HINT = format('Register the label with track(%L, trackers => ARRAY[..., pghistory.manual_event(%L)]).',
                                create_event.tbl::text, create_event.label);
    END IF;
    SELECT * INTO v_pk FROM pghistory._primary_key(create_event.tbl);
    IF NOT FOUND THEN
        RAISE EXCEPTION 'pghistory: % has no single-column primary key, so its rows cannot be named by obj_id',
                create_event.tbl
            USING ERRCODE = 'feature_not_supported',
                  HINT = 'Add a primary key to the table, or record the change by writing the row.';
    END IF;
    IF v_config.context = 'json' AND v_context_id IS NOT NULL THEN
        v_context := pghistory._context_metadata();
    END IF;

    SELECT l.target, l.vals INTO v_lists
      FROM pghistory._snapshot_lists(v_config, 'new', '$2', '$3', '$4') AS l;
    EXECUTE format('INSERT INTO %s (%s) SELECT %s FROM %s AS new WHERE new.%I = $1::%s RETURNING pgh_id',
                   v_config.event_table, v_lists.target, v_lists.vals,
                   pghistory._qualified_name(create_event.tbl), v_pk.column_name, v_pk.column_type)
       INTO v_pgh_id
      USING create_event.obj_id, create_event.label, v_context_id, v_context;
    IF v_pgh_id IS NULL THEN
        RAISE EXCEPTION 'pghistory: % has no row with % = %', create_event.tbl, quote_ident(v_pk.column_name),
                quote_literal(create_event.obj_id)
            USING ERRCODE = 'no_data_found',
                  HINT = 'create_event snapshots an existing row; check the key.';
    END IF;
    IF v_config.context = 'fk' AND v_context_id IS NOT NULL THEN
        PERFORM pghistory._attach_context(v_context_id, current_setting('pghistory.context_metadata', true));
    END IF;
    RETURN v_pgh_id;
END
$$;

-- create_event() with the key in its own type: 1, 1::bigint, a uuid.
CREATE FUNCTION pghistory.create_event(tbl regclass, obj_id anyelement, label text)
RETURNS bigint
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT pghistory.create_event(tbl, obj_id::text, label) $$;

-- ---------------------------------------------------------------------------
-- views.sql: what is tracked, and the history across all tables
-- ---------------------------------------------------------------------------

-- One row per tracked table, with the columns it snapshots.
CREATE VIEW pghistory.tracking AS
SELECT t.tracked_table,
       t.event_table,
       t.trackers,
       ARRAY(SELECT k.label FROM unnest(t.trackers) AS k) AS labels,
       ARRAY(SELECT c.column_name::text
               FROM pghistory._tracked_columns(t.tracked_table, t.fields, t.exclude) AS c) AS fields,
       t.context,
       t.level,
       t.append_only
  FROM pghistory.tracked AS t;
COMMENT ON VIEW pghistory.tracking IS 'pghistory: the tracked tables and how they are tracked';

-- ---------------------------------------------------------------------------
-- browsing.sql: reading history back (pghistory.events(), the
-- pghistory.aggregate_events view) and putting a row back (pghistory.revert())
--
-- What pgh_diff means. Each event's pgh_data records the row's values at
-- one moment: right AFTER the change for 'new' snapshots (insert, update,
-- manual events) and right BEFORE it for 'old' snapshots (update_event(
-- snapshot => 'old'), delete, truncate). Sorting an object's events by
-- pgh_id gives a timeline of recorded states, and pgh_diff is the change
-- the event itself stands for, {"col": [before, after]} for each column
-- whose value differs, read off the neighbouring recorded states:
--   insert                  NULL: the row did not exist before.
--   update (new), manual    from the state recorded by the object's previous
--                           event to this event's own. NULL when there is no
--                           previous event, or it was a delete/truncate (the
--                           state in between was not recorded).
--   update (old)            from this event's own state (before the update)
--                           to the state recorded by the object's NEXT event:
--                           the change this update made. NULL while there is
--                           no next event yet, or when it is an insert.
--   delete, truncate        {} : removing a row changes none of its values;
--                           pgh_data is the row as it was removed.
-- So an update's diff is always the change that update made, whichever row
-- its tracker stores (django-pghistory compares each snapshot with the one
-- before it, which shifts every 'old' snapshot's diff onto the next event).
-- The kind of an event is looked up by its label among the table's current
-- trackers; labels no tracker has (any more) count as 'new' snapshots,
-- except 'insert', 'delete' and 'truncate', which keep their default kind.
-- Rows without pgh_obj_id (tables without a single-column primary key)
-- cannot be told apart, so their updates have no diff.
-- ---------------------------------------------------------------------------

-- Readers of history run the browsing functions with their own rights, so
-- they must see which tables are tracked and how; the same facts are public
-- in pg_trigger and pg_proc (the generated trigger functions) anyway.
GRANT SELECT (tracked_table, event_table, trackers, fields, exclude) ON pghistory.tracked TO PUBLIC;

-- How an event of each label is to be read (see the header): 'i' insert,
-- 'n' a 'new' snapshot (update, manual), 'o' an 'old' snapshot of an
-- update, 'd' delete or truncate. Returns a CASE expression over
-- p_label_expression, built from the trackers (NULL: none known).
CREATE FUNCTION pghistory._event_kind_expression(p_trackers pghistory.tracker[], p_label_expression text)
RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT format('CASE %s %s ELSE ''n'' END', p_label_expression,
                  string_agg(format('WHEN %L THEN %L', k.label, k.kind), ' ' ORDER BY k.ord))
      FROM (SELECT t.label, t.ord,
                   CASE WHEN t.operation = 'insert' THEN 'i'
                        WHEN t.operation IN ('delete', 'truncate') THEN 'd'
                        WHEN t.operation = 'update' AND t.snapshot = 'old' THEN 'o'
                        ELSE 'n' END AS kind
              FROM unnest(p_trackers) WITH ORDINALITY AS t(label, operation, condition, changed, snapshot, ord)
            UNION ALL
            SELECT d.label, 1000 + d.ord, d.kind
              FROM (VALUES ('insert', 'i', 1), ('delete', 'd', 2), ('truncate', 'd', 3)) AS d(label, kind, ord)
             WHERE NOT EXISTS (SELECT FROM unnest(p_trackers) AS t WHERE t.label = d.label)) AS k
$$;

-- The data columns of an event table (every column but pghistory's own
-- pgh_* ones), in table order, with what an expression needs to compare
-- two values of each: '' when its type has an equality operator, '::text'
-- when it has none (json, xml, point), as the trigger functions do.
CREATE FUNCTION pghistory._data_columns(p_event_table regclass)
RETURNS TABLE (column_name name, cast_to text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT a.attname, CASE WHEN t.has_equality THEN '' ELSE '::text' END
      FROM pg_catalog.pg_attribute AS a
      JOIN (SELECT y.atttypid, y.atttypmod,   -- probed once per type
                   pghistory._has_equality(format_type(y.atttypid, y.atttypmod)) AS has_equality
              FROM (SELECT DISTINCT x.atttypid, x.atttypmod FROM pg_catalog.pg_attribute AS x
                     WHERE x.attrelid = p_event_table AND x.attnum > 0 AND NOT x.attisdropped
                       AND x.attname NOT LIKE 'pgh\_%' OFFSET 0) AS y) AS t
        ON t.atttypid = a.atttypid AND t.atttypmod = a.atttypmod
     WHERE a.attrelid = p_event_table AND a.attnum > 0 AND NOT a.attisdropped
       AND a.attname NOT LIKE 'pgh\_%'
     ORDER BY a.attnum
$$;

-- The SQL expression of an event's pgh_data: the data columns p_columns
-- of row p_row as a jsonb object. (jsonb_build_object takes at most 50
-- pairs, so wide tables get several, joined with ||.)
CREATE FUNCTION pghistory._data_expression(p_columns name[], p_row text)
RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce(string_agg(c.chunk, ' || ' ORDER BY c.n), '''{}''::jsonb')
      FROM (SELECT (d.ord - 1) / 50 AS n,
                   format('pg_catalog.jsonb_build_object(%s)',
                          string_agg(format('%L, %s.%I', d.column_name, p_row, d.column_name), ', ' ORDER BY d.ord)) AS chunk
              FROM unnest(p_columns) WITH ORDINALITY AS d(column_name, ord)
             GROUP BY (d.ord - 1) / 50) AS c
$$;

-- The SQL expression of the diff from row p_old to row p_new: {"col":
-- [old value, new value]} for each of p_columns whose values differ, {}
-- when none does. p_casts holds, per column, '' or the cast to compare its
-- values through ('::text' for types without equality, see _data_columns).
CREATE FUNCTION pghistory._diff_expression(p_columns name[], p_casts text[], p_old text, p_new text)
RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT '''{}''::jsonb' || coalesce(string_agg(
               format(E'\n              || CASE WHEN %1$s.%3$I%4$s IS DISTINCT FROM %2$s.%3$I%4$s'
                      ' THEN pg_catalog.jsonb_build_object(%5$L, pg_catalog.jsonb_build_array(%1$s.%3$I, %2$s.%3$I))'
                      ' ELSE ''{}''::jsonb END',
                      p_old, p_new, c.column_name, c.cast_to, c.column_name), '' ORDER BY c.ord), '')
      FROM unnest(p_columns, p_casts) WITH ORDINALITY AS c(column_name, cast_to, ord)
$$;

-- The event tables events() reads: the one of p_table (a tracked table or
-- an event table, tracked or kept after untrack()), or every tracked
-- table's when p_table is NULL. For each: the event table, the tracked
-- table's name (for kept history, the name its comment records), and the
-- trackers (NULL for kept history). Refuses a table that is neither.
CREATE FUNCTION pghistory._history_sources(p_table regclass)
RETURNS TABLE (event_table regclass, obj_model text, trackers pghistory.tracker[])
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN QUERY
        SELECT t.event_table, pghistory._qualified_name(t.tracked_table), t.trackers
          FROM pghistory.tracked AS t
         WHERE p_table IS NULL OR t.tracked_table = p_table OR t.event_table = p_table
         ORDER BY t.event_table;
    IF FOUND OR p_table IS NULL THEN
        RETURN;
    END IF;
    -- history kept after untrack(): an event table by its own columns
    IF (SELECT count(*) FROM pg_catalog.pg_attribute AS a
         WHERE a.attrelid = p_table AND NOT a.attisdropped
           AND a.attname IN ('pgh_id', 'pgh_created_at', 'pgh_label', 'pgh_obj_id')) = 4 THEN
        RETURN QUERY
            SELECT p_table,
                   substring(pg_catalog.obj_description(p_table::oid, 'pg_class') FROM '^pghistory: events of (.*)$'),
                   NULL::pghistory.tracker[];
        RETURN;
    END IF;
    RAISE EXCEPTION 'pghistory: % is not tracked', p_table
        USING ERRCODE = 'undefined_object',
              HINT = 'Give a tracked table or an event table; SELECT * FROM pghistory.tracking lists them.';
END
$$;

-- The query that reads one event table for events(): the eleven columns of
-- pghistory.aggregate_events, in order, with events()'s filters applied
-- inside it ($1 obj_id, $2 since, $3 until, $4 labels, $5 context_id; only
-- the filters given are written in). NULL when the filters exclude the
-- whole table (a context_id asked of a table without contexts).
-- A diff needs the event's neighbours in its object's whole history,
-- whatever the filters leave out; the query finds them in one of two ways:
--   one object, or a whole table: the object's (or every object's) events
--     are read once (one object's through the (pgh_obj_id, pgh_id) index,
--     in order), and lag()/lead() over them give each event its
--     neighbours; the other filters apply after that.
--   since, until, labels or context_id without obj_id: the few events they
--     select are found first, and each finds its neighbour with one more
--     probe of the (pgh_obj_id, pgh_id) index.
CREATE FUNCTION pghistory._events_query(p_event_table regclass, p_obj_model text, p_trackers pghistory.tracker[],
                                        p_read_context boolean, p_obj_id boolean, p_since boolean,
                                        p_until boolean, p_labels boolean, p_context_id boolean)
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_model text := pghistory._qualified_name(p_event_table);
    v_obj_id_type text;
    v_has_context_id boolean;
    v_has_context boolean;
    v_context text;
    v_where text[] := '{}';
    v_whole_histories boolean := p_obj_id OR NOT (p_since OR p_until OR p_labels OR p_context_id);
    v_from text;
    v_columns name[];
    v_casts text[];
BEGIN
    SELECT array_agg(c.column_name ORDER BY c.ord), array_agg(c.cast_to ORDER BY c.ord) INTO v_columns, v_casts
      FROM pghistory._data_columns(p_event_table) WITH ORDINALITY AS c(column_name, cast_to, ord);
    SELECT format_type(a.atttypid, a.atttypmod) INTO v_obj_id_type
      FROM pg_catalog.pg_attribute AS a
     WHERE a.attrelid = p_event_table AND a.attname = 'pgh_obj_id' AND NOT a.attisdropped;
    v_has_context_id := EXISTS (SELECT FROM pg_catalog.pg_attribute AS a WHERE a.attrelid = p_event_table
                                   AND a.attname = 'pgh_context_id' AND NOT a.attisdropped);
    v_has_context := EXISTS (SELECT FROM pg_catalog.pg_attribute AS a WHERE a.attrelid = p_event_table
                                AND a.attname = 'pgh_context' AND NOT a.attisdropped);
    IF p_context_id AND NOT v_has_context_id THEN
        RETURN NULL;
    END IF;

    -- json mode carries the metadata; fk mode points at pghistory.context
    -- (shown to those who may read it). A table switched between modes has
    -- events of both kinds.
    v_context := CASE
        WHEN v_has_context_id AND p_read_context THEN
            '(SELECT c.metadata FROM pghistory.context AS c WHERE c.id = pgh_row.pgh_context_id)' END;
    IF v_has_context THEN
        v_context := format('coalesce(pgh_row.pgh_context, %s)', coalesce(v_context, 'NULL'));
    END IF;

    IF v_whole_histories THEN
        -- Rows without pgh_obj_id (tables without a single-column key)
        -- belong to no object: they have no neighbours.
        v_from := format($sql$(SELECT pgh_event,
               CASE WHEN pgh_event.pgh_obj_id IS NOT NULL THEN lag(pgh_event) OVER pgh_object END AS pgh_prev,
               CASE WHEN pgh_event.pgh_obj_id IS NOT NULL THEN lead(pgh_event) OVER pgh_object END AS pgh_next
          FROM %1$s AS pgh_event%2$s
        WINDOW pgh_object AS (PARTITION BY pgh_event.pgh_obj_id ORDER BY pgh_event.pgh_id)) AS pgh_history
  CROSS JOIN LATERAL (SELECT (pgh_history.pgh_event).*) AS pgh_row
  CROSS JOIN LATERAL (SELECT (pgh_history.pgh_prev).*) AS pgh_prev
  CROSS JOIN LATERAL (SELECT (pgh_history.pgh_next).*) AS pgh_next$sql$,
            p_event_table,
            CASE WHEN p_obj_id THEN format(E'\n         WHERE pgh_event.pgh_obj_id = $1::%s', v_obj_id_type) ELSE '' END);
    ELSE
        v_from := format($sql$%1$s AS pgh_row
  LEFT JOIN LATERAL (SELECT pgh_other.* FROM %1$s AS pgh_other
                      WHERE %2$s = 'n' AND pgh_other.pgh_obj_id = pgh_row.pgh_obj_id AND pgh_other.pgh_id < pgh_row.pgh_id
                      ORDER BY pgh_other.pgh_id DESC LIMIT 1) AS pgh_prev ON true
  LEFT JOIN LATERAL (SELECT pgh_other.* FROM %1$s AS pgh_other
                      WHERE %2$s = 'o' AND pgh_other.pgh_obj_id = pgh_row.pgh_obj_id AND pgh_other.pgh_id > pgh_row.pgh_id
                      ORDER BY pgh_other.pgh_id LIMIT 1) AS pgh_next ON true$sql$,
            p_event_table, pghistory._event_kind_expression(p_trackers, 'pgh_row.pgh_label'));
    END IF;
    IF p_since THEN
        v_where := v_where || 'pgh_row.pgh_created_at >= $2'::text;
    END IF;
    IF p_until THEN
        v_where := v_where || 'pgh_row.pgh_created_at < $3'::text;
    END IF;
    IF p_labels THEN
        v_where := v_where || 'pgh_row.pgh_label = ANY ($4)'::text;
    END IF;
    IF p_context_id THEN
        v_where := v_where || 'pgh_row.pgh_context_id = $5'::text;
    END IF;

    RETURN format($sql$
SELECT %1$L::text || ':' || pgh_row.pgh_id AS pgh_slug, %1$L::text AS pgh_model,
       pgh_row.pgh_id::bigint AS pgh_id, pgh_row.pgh_created_at::timestamptz AS pgh_created_at,
       pgh_row.pgh_label::text AS pgh_label, %2$s AS pgh_data,
       CASE %3$s
            WHEN 'd' THEN '{}'::jsonb
            WHEN 'n' THEN CASE WHEN pgh_prev.pgh_id IS NOT NULL AND %4$s <> 'd' THEN %6$s END
            WHEN 'o' THEN CASE WHEN pgh_next.pgh_id IS NOT NULL AND %5$s <> 'i' THEN %7$s END
       END AS pgh_diff,
       %8$s::uuid AS pgh_context_id, %9$s::jsonb AS pgh_context,
       %10$L::text AS pgh_obj_model, pgh_row.pgh_obj_id::text AS pgh_obj_id
  FROM %11$s%12$s$sql$,
        v_model,
        pghistory._data_expression(v_columns, 'pgh_row'),
        pghistory._event_kind_expression(p_trackers, 'pgh_row.pgh_label'),
        pghistory._event_kind_expression(p_trackers, 'pgh_prev.pgh_label'),
        pghistory._event_kind_expression(p_trackers, 'pgh_next.pgh_label'),
        pghistory._diff_expression(v_columns, v_casts, 'pgh_prev', 'pgh_row'),
        pghistory._diff_expression(v_columns, v_casts, 'pgh_row', 'pgh_next'),
        CASE WHEN v_has_context_id THEN 'pgh_row.pgh_context_id' ELSE 'NULL' END,
        coalesce(v_context, 'NULL'),
        p_obj_model,
        v_from,
        CASE WHEN cardinality(v_where) > 0
             THEN E'\n WHERE ' || array_to_string(v_where, E'\n   AND ') ELSE '' END);
END
$$;

-- The history of one object, one table or every tracked table, oldest
-- first (pgh_created_at, then pgh_id), with the columns of
-- pghistory.aggregate_events. tbl is a tracked table, or an event table
-- (also one kept after untrack()); obj_id a primary key value of tbl, as
-- text; since (inclusive) and until (exclusive) bound pgh_created_at;
-- labels and context_id keep the events that have them. The filters are
-- written into each event table's query, so one object's history is an
-- index lookup; diffs are those of the unfiltered history.
-- Runs with the caller's rights: event tables the caller may not read are
-- left out (or refused, when named by tbl), and fk-mode context metadata
-- shows only to those who may read pghistory.context.
-- Refuses obj_id without tbl, an obj_id that is not a key value, and
-- tables that are neither tracked nor event tables.
CREATE FUNCTION pghistory.events(tbl        regclass    DEFAULT NULL,
                                 obj_id     text        DEFAULT NULL,
                                 since      timestamptz DEFAULT NULL,
                                 until      timestamptz DEFAULT NULL,
                                 labels     text[]      DEFAULT NULL,
                                 context_id uuid        DEFAULT NULL)
RETURNS TABLE (pgh_slug text, pgh_model text, pgh_id bigint, pgh_created_at timestamptz, pgh_label text,
               pgh_data jsonb, pgh_diff jsonb, pgh_context_id uuid, pgh_context jsonb,
               pgh_obj_model text, pgh_obj_id text)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
SET jit = off  -- compiling costs more than these index probes and scans gain from it
AS $$
DECLARE
    v_source record;
    v_query text;
    v_queries text[] := '{}';
    v_read_context boolean := has_table_privilege('pghistory.context', 'SELECT');
    v_obj_id_type text;
BEGIN
    IF events.obj_id IS NOT NULL AND events.tbl IS NULL THEN
        RAISE EXCEPTION 'pghistory: obj_id needs tbl, the table the object belongs to'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'For example pghistory.events(''orders'', obj_id => ''1'').';
    END IF;
    FOR v_source IN SELECT * FROM pghistory._history_sources(events.tbl) LOOP
        IF NOT (has_table_privilege(v_source.event_table, 'SELECT')
                AND has_schema_privilege((SELECT c.relnamespace FROM pg_catalog.pg_class AS c
                                           WHERE c.oid = v_source.event_table), 'USAGE')) THEN
            CONTINUE WHEN events.tbl IS NULL;  -- the history this role may read
            RAISE EXCEPTION 'pghistory: permission denied for the history in %', v_source.event_table
                USING ERRCODE = 'insufficient_privilege',
                      HINT = format('Reading history needs SELECT on its event table (and USAGE on its schema): '
                                    'GRANT SELECT ON %s TO %I.', v_source.event_table, current_user);
        END IF;
        IF events.obj_id IS NOT NULL THEN
            SELECT format_type(a.atttypid, a.atttypmod) INTO v_obj_id_type
              FROM pg_catalog.pg_attribute AS a
             WHERE a.attrelid = v_source.event_table AND a.attname = 'pgh_obj_id' AND NOT a.attisdropped;
            BEGIN
                EXECUTE format('SELECT $1::%s', v_obj_id_type) USING events.obj_id;
            EXCEPTION WHEN data_exception THEN
                RAISE EXCEPTION 'pghistory: obj_id % is not a valid key of % (%)',
                        quote_literal(events.obj_id), events.tbl, v_obj_id_type
                    USING ERRCODE = 'invalid_parameter_value',
                          HINT = 'obj_id is the value of the row''s primary key, as text.';
            END;
        END IF;
        v_query := pghistory._events_query(v_source.event_table, v_source.obj_model, v_source.trackers,
                                           v_read_context, events.obj_id IS NOT NULL, events.since IS NOT NULL,
                                           events.until IS NOT NULL, events.labels IS NOT NULL,
                                           events.context_id IS NOT NULL);
        IF v_query IS NOT NULL THEN
            v_queries := v_queries || v_query;
        END IF;
    END LOOP;
    IF cardinality(v_queries) = 0 THEN
        RETURN;
    END IF;
    RETURN QUERY EXECUTE
        'SELECT * FROM (' || array_to_string(v_queries, E'\nUNION ALL') || E'\n) AS pgh_events\n'
        || 'ORDER BY pgh_events.pgh_created_at, pgh_events.pgh_id, pgh_events.pgh_model'
        USING events.obj_id, events.since, events.until, events.labels, events.context_id;
END
$$;

-- Every event of every tracked table, oldest first: pghistory.events()
-- without filters. Filter with events() instead of a WHERE on the view:
-- its filters reach the event tables' indexes, the view's cannot. Shows
-- each role only the history it may read (see events()); history kept
-- after untrack() is read with events('<event table>').
CREATE VIEW pghistory.aggregate_events AS
SELECT e.pgh_slug, e.pgh_model, e.pgh_id, e.pgh_created_at, e.pgh_label, e.pgh_data, e.pgh_diff,
       e.pgh_context_id, e.pgh_context, e.pgh_obj_model, e.pgh_obj_id
  FROM pghistory.events() AS e;
COMMENT ON VIEW pghistory.aggregate_events IS
    'pghistory: every event of every tracked table the current role may read, oldest first';
GRANT SELECT ON pghistory.aggregate_events TO PUBLIC;
-- The view reads through events(), which runs as the caller already; on
-- PostgreSQL 15 and later say so on the view too.
DO $$
BEGIN
    IF current_setting('server_version_num')::int >= 150000 THEN
        ALTER VIEW pghistory.aggregate_events SET (security_invoker = true);
    END IF;
END
$$;

-- Puts the tracked row back as event pgh_id of event_table recorded it:
-- updates the row with that primary key, or inserts it again when it was
-- deleted. The write goes through the table's triggers, so the revert is
-- itself recorded, under the current context. Runs with the caller's
-- rights. Returns the pgh_id of the event the revert wrote (the last one,
-- when several trackers fired), or NULL when nothing was recorded: the row
-- already matched the snapshot (nothing is written then), or no tracker
-- records such a change.
-- Refuses event tables of untracked tables, event tables that do not
-- record every column of the table (fields/exclude), tables without a
-- single-column primary key, unknown pgh_ids, snapshots holding a value
-- for a column dropped since, and snapshots a constraint now rejects.
CREATE FUNCTION pghistory.revert(event_table regclass, pgh_id bigint)
RETURNS bigint
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_tracked regclass;
    v_other regclass;
    v_fields text[];
    v_exclude text[];
    v_pk record;
    v_missing text;
    v_columns text[];      -- the table's columns, all recorded
    v_settable text[];     -- those an UPDATE may set
    v_insertable text[];   -- those an INSERT may set
    v_dropped text[];      -- recorded columns the table no longer has
    v_obj_id text;
    v_exists boolean;
    v_before bigint;
    v_written bigint;
    v_failure text;
    v_state text;
    v_message text;
    v_detail text;
BEGIN
    SELECT t.tracked_table, t.fields, t.exclude INTO v_tracked, v_fields, v_exclude
      FROM pghistory.tracked AS t WHERE t.event_table = revert.event_table;
    IF NOT FOUND THEN
        SELECT t.event_table INTO v_other FROM pghistory.tracked AS t WHERE t.tracked_table = revert.event_table;
        IF FOUND THEN
            RAISE EXCEPTION 'pghistory: % is a tracked table; revert() takes its event table, %',
                    revert.event_table, v_other
                USING ERRCODE = 'wrong_object_type',
                      HINT = 'Pass the event table and the pgh_id of the event to go back to.';
        END IF;
        RAISE EXCEPTION 'pghistory: % is not the event table of a tracked table', revert.event_table
            USING ERRCODE = 'undefined_object',
                  HINT = 'revert() writes through the triggers of a tracked table; track the table again '
                         'to put rows back from history kept after untrack().';
    END IF;

    SELECT * INTO v_pk FROM pghistory._primary_key(v_tracked);
    IF NOT FOUND THEN
        RAISE EXCEPTION 'pghistory: % has no single-column primary key, so revert() cannot tell which row an event is about',
                v_tracked
            USING ERRCODE = 'feature_not_supported',
                  HINT = 'Add a primary key to the table; events recorded from then on can be reverted.';
    END IF;

    -- every column of the table must be in the snapshots
    SELECT string_agg(format('%I', a.attname), ', ' ORDER BY a.attnum) INTO v_missing
      FROM pg_catalog.pg_attribute AS a
     WHERE a.attrelid = v_tracked AND a.attnum > 0 AND NOT a.attisdropped
       AND (a.attname NOT IN (SELECT c.column_name FROM pghistory._tracked_columns(v_tracked, v_fields, v_exclude) AS c)
            OR NOT EXISTS (SELECT FROM pg_catalog.pg_attribute AS e
                            WHERE e.attrelid = revert.event_table AND e.attname = a.attname AND NOT e.attisdropped));
    IF v_missing IS NOT NULL THEN
        RAISE EXCEPTION 'pghistory: % does not record every column of % (not: %), so its events cannot put a row back',
                revert.event_table, v_tracked, v_missing
            USING ERRCODE = 'feature_not_supported',
                  HINT = 'revert() needs the table tracked without fields or exclude.';
    END IF;
    SELECT array_agg(a.attname::text ORDER BY a.attnum),
           array_agg(a.attname::text ORDER BY a.attnum)
               FILTER (WHERE a.attgenerated = '' AND a.attidentity <> 'a' AND a.attname <> v_pk.column_name),
           array_agg(a.attname::text ORDER BY a.attnum) FILTER (WHERE a.attgenerated = '')
      INTO v_columns, v_settable, v_insertable
      FROM pg_catalog.pg_attribute AS a
     WHERE a.attrelid = v_tracked AND a.attnum > 0 AND NOT a.attisdropped;
    v_dropped := ARRAY(SELECT e.attname::text FROM pg_catalog.pg_attribute AS e
                        WHERE e.attrelid = revert.event_table AND e.attnum > 0 AND NOT e.attisdropped
                          AND e.attname NOT LIKE 'pgh\_%' AND e.attname <> ALL (v_columns)
                        ORDER BY e.attnum);

    EXECUTE format('SELECT pgh_row.pgh_obj_id::text, %s FROM %s AS pgh_row WHERE pgh_row.pgh_id = $1',
                   coalesce((SELECT string_agg(format('pgh_row.%I IS NOT NULL', d), ' OR ') FROM unnest(v_dropped) AS d),
                            'false'),
                   revert.event_table)
       INTO v_obj_id, v_exists USING revert.pgh_id;
    IF v_exists IS NULL THEN
        RAISE EXCEPTION 'pghistory: % has no event with pgh_id %', revert.event_table, coalesce(revert.pgh_id::text, 'NULL')
            USING ERRCODE = 'no_data_found',
                  HINT = format('SELECT pgh_id, pgh_label, pgh_data FROM pghistory.events(%L) lists its events.',
                                revert.event_table::text);
    END IF;
    v_failure := format('pghistory: cannot revert %s to event %s of %s', v_tracked, revert.pgh_id, revert.event_table);
    IF v_obj_id IS NULL THEN
        RAISE EXCEPTION '%: the event has no pgh_obj_id (it was recorded while the table had no single-column primary key)',
                v_failure
            USING ERRCODE = 'feature_not_supported';
    END IF;
    IF v_exists THEN
        -- which dropped column holds a value: name it
        EXECUTE format('SELECT %s FROM %s AS pgh_row WHERE pgh_row.pgh_id = $1',
                       (SELECT format('concat_ws(%L, %s)', ', ',
                                      string_agg(format('CASE WHEN pgh_row.%1$I IS NOT NULL THEN %2$L END', d, quote_ident(d)), ', '))
                          FROM unnest(v_dropped) AS d),
                       revert.event_table)
           INTO v_missing USING revert.pgh_id;
        RAISE EXCEPTION '%: it holds a value for %, which % no longer has', v_failure,
                CASE WHEN v_missing LIKE '%,%' THEN 'columns ' ELSE 'column ' END || v_missing, v_tracked
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Add the column back first, or copy the values you need from the event table by hand.';
    END IF;

    -- lock the row (when it exists) so that the events the revert writes
    -- are the only ones for it from here on
    EXECUTE format('SELECT true FROM %s AS t WHERE t.%I = $1::%s FOR UPDATE', v_tracked, v_pk.column_name, v_pk.column_type)
       INTO v_exists USING v_obj_id;
    v_exists := coalesce(v_exists, false);
    EXECUTE format('SELECT max(e.pgh_id) FROM %s AS e', revert.event_table) INTO v_before;

    BEGIN
        IF v_exists AND cardinality(v_settable) > 0 THEN
            EXECUTE format('UPDATE %1$s AS t SET (%2$s) = ROW(%3$s) FROM %4$s AS pgh_row '
                           'WHERE pgh_row.pgh_id = $1 AND t.%5$I = pgh_row.pgh_obj_id AND %6$s',
                           v_tracked,
                           array_to_string(ARRAY(SELECT format('%I', c) FROM unnest(v_settable) AS c), ', '),
                           array_to_string(ARRAY(SELECT format('pgh_row.%I', c) FROM unnest(v_settable) AS c), ', '),
                           revert.event_table, v_pk.column_name,
                           pghistory._changed_expression(v_tracked, v_columns, 't', 'pgh_row'))
               USING revert.pgh_id;
        ELSIF NOT v_exists THEN
            EXECUTE format('INSERT INTO %1$s AS t (%2$s) OVERRIDING SYSTEM VALUE SELECT %3$s FROM %4$s AS pgh_row '
                           'WHERE pgh_row.pgh_id = $1',
                           v_tracked,
                           array_to_string(ARRAY(SELECT format('%I', c) FROM unnest(v_insertable) AS c), ', '),
                           array_to_string(ARRAY(SELECT format('pgh_row.%I', c) FROM unnest(v_insertable) AS c), ', '),
                           revert.event_table)
               USING revert.pgh_id;
        END IF;
    EXCEPTION WHEN integrity_constraint_violation OR data_exception OR datatype_mismatch THEN
        GET STACKED DIAGNOSTICS v_state = RETURNED_SQLSTATE, v_message = MESSAGE_TEXT, v_detail = PG_EXCEPTION_DETAIL;
        RAISE EXCEPTION '%: %', v_failure, v_message
            USING ERRCODE = v_state, DETAIL = v_detail,
                  HINT = 'The snapshot no longer fits the table as it is now; change the conflicting data '
                         'first, or revert to another event.';
    END;

    EXECUTE format('SELECT max(e.pgh_id) FROM %s AS e WHERE e.pgh_id > $1 AND e.pgh_obj_id = $2::%s',
                   revert.event_table, v_pk.column_type)
       INTO v_written USING coalesce(v_before, 0), v_obj_id;
    RETURN v_written;
END
$$;

-- ---------------------------------------------------------------------------
-- schema_changes.sql: keeping tracking correct through ALTER TABLE and DROP
--
-- The trigger functions name their columns statically, so every schema
-- change of a tracked table must be followed. Three event triggers do it:
--   pghistory_before_ddl  (ddl_command_start, ALTER TABLE / ALTER SCHEMA)
--       notes what every tracked table looks like before the command;
--   pghistory_after_ddl   (ddl_command_end, ALTER TABLE / CREATE TABLE /
--       ALTER SCHEMA) compares, and brings the changed tables' registry
--       rows, event tables and trigger functions in step;
--   pghistory_on_drop     (sql_drop) forgets dropped tables, keeps their
--       history, and refuses to drop the history of a table still tracked.
-- What each change does:
--   ADD COLUMN        the column is added to the event table and recorded
--                     (unless `fields` lists the columns to track);
--   RENAME COLUMN     renamed in the event table and in fields, exclude,
--                     and the trackers' `changed` and conditions;
--   DROP COLUMN       kept in the event table with its history; new events
--                     leave it NULL; removed from fields, exclude, changed;
--   ALTER .. TYPE     the event table's column is converted the way
--                     PostgreSQL converts on assignment, else with a cast;
--                     when the history does not convert, the ALTER fails;
--   RENAME, SET SCHEMA  tracking goes on (the trigger functions are renamed);
--   partitions        new and attached partitions get the triggers;
--   DROP TABLE        the history stays, the registry row goes.
-- Only a superuser may create event triggers. CREATE EXTENSION run by
-- anyone else leaves them out; then pghistory.refresh(table) brings a
-- table in step after ALTER TABLE, and a superuser can add the event
-- triggers later with pghistory.install_event_triggers().
-- ---------------------------------------------------------------------------

-- What the trigger functions of each tracked table depend on: its name,
-- its event table's name, its columns (by attnum: name, type, typmod,
-- collation), its primary key column and its partitions; and the event
-- table's column names (event_columns, to check, not to follow). One
-- jsonb object keyed by the tracked table's oid; p_tables limits it to
-- some tables.
CREATE FUNCTION pghistory._schema_snapshot(p_tables regclass[] DEFAULT NULL)
RETURNS jsonb
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce(jsonb_object_agg(c.oid::text, jsonb_build_object(
               'table', format('%I.%I', n.nspname, c.relname),
               'event_table', (SELECT format('%I.%I', en.nspname, ec.relname)
                                 FROM pg_catalog.pg_class AS ec
                                 JOIN pg_catalog.pg_namespace AS en ON en.oid = ec.relnamespace
                                WHERE ec.oid = t.event_table),
               'columns', (SELECT jsonb_object_agg(a.attnum::text, jsonb_build_array(
                                      a.attname, a.atttypid, a.atttypmod, a.attcollation))
                             FROM pg_catalog.pg_attribute AS a
                            WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped),
               'key', (SELECT k.column_name FROM pghistory._primary_key(c.oid) AS k),
               'tree', (SELECT jsonb_agg(r.relid::oid ORDER BY r.relid::oid)
                          FROM pghistory._table_tree(c.oid) AS r),
               'event_columns', (SELECT jsonb_agg(e.attname ORDER BY e.attnum)
                                   FROM pg_catalog.pg_attribute AS e
                                  WHERE e.attrelid = t.event_table AND e.attnum > 0 AND NOT e.attisdropped))), '{}')
      FROM pghistory.tracked AS t
      JOIN pg_catalog.pg_class AS c ON c.oid = t.tracked_table
      JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
     WHERE p_tables IS NULL OR t.tracked_table = ANY (p_tables)
$$;

-- Whether an event trigger of pghistory is at work in this transaction:
-- the DDL it runs itself (on event tables, trigger functions) is not
-- followed again.
CREATE FUNCTION pghistory._following_schema()
RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce(current_setting('pghistory._following_schema', true), '') = 'on'
$$;

-- A tracker condition with references to a renamed column (OLD.name,
-- NEW."Name") pointed at its new name. Anything else is left alone; the
-- result is checked by compiling it, so a reference this misses is
-- reported rather than silently broken.
CREATE FUNCTION pghistory._rename_in_condition(p_condition text, p_old name, p_new name)
RETURNS text
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_result text := p_condition;
    v_new text := replace(quote_ident(p_new), '\', '\\');
BEGIN
    IF v_result IS NULL THEN
        RETURN NULL;
    END IF;
    -- quoted: OLD."Old Name" (case-sensitive name, case-insensitive OLD/NEW)
    v_result := regexp_replace(v_result,
        '(\m(?:[Oo][Ll][Dd]|[Nn][Ee][Ww])\s*\.\s*)'
        || regexp_replace('"' || replace(p_old, '"', '""') || '"', '([\\^$.|?*+()\[\]{}])', '\\\1', 'g'),
        '\1' || v_new, 'g');
    -- unquoted: old.status, OLD.Status (folded to lower case)
    IF p_old ~ '^[a-z_][a-z0-9_$]*$' THEN
        v_result := regexp_replace(v_result,
            '(\m(?:old|new)\s*\.\s*)' || replace(p_old, '$', '\$') || '(?![a-z0-9_$])',
            '\1' || v_new, 'gi');
    END IF;
    RETURN v_result;
END
$$;

-- Converts an event table column to the type of the tracked column it
-- records: first as PostgreSQL assigns (refusing values that do not fit,
-- never truncating), and only when no assignment cast exists with an
-- explicit cast (USING col::type). Refuses, with what to do, when the
-- history does not convert.
CREATE FUNCTION pghistory._convert_event_column(p_event_table regclass, p_column name,
                                                p_type text, p_collation text, p_tracked regclass)
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_old_type text := (SELECT format_type(a.atttypid, a.atttypmod) FROM pg_catalog.pg_attribute AS a
                         WHERE a.attrelid = p_event_table AND a.attname = p_column);
    v_message text;
BEGIN
    BEGIN
        BEGIN
            EXECUTE format('ALTER TABLE %s ALTER COLUMN %I TYPE %s%s', p_event_table, p_column, p_type, p_collation);
        EXCEPTION WHEN datatype_mismatch THEN
            EXECUTE format('ALTER TABLE %s ALTER COLUMN %I TYPE %s%s USING %I::%s', p_event_table, p_column,
                           p_type, p_collation, p_column, p_type);
        END;
    EXCEPTION WHEN OTHERS THEN
        GET STACKED DIAGNOSTICS v_message = MESSAGE_TEXT;
        RAISE EXCEPTION 'pghistory: the history of %.% cannot be converted from % to %',
                pghistory._qualified_name(p_tracked), quote_ident(p_column), v_old_type, p_type
            USING ERRCODE = 'datatype_mismatch',
                  DETAIL = format('Converting column %I of the event table %s failed: %s',
                                  p_column, p_event_table, v_message),
                  HINT = format('Convert the history first, the way you want it converted: '
                                'ALTER TABLE %s ALTER COLUMN %I TYPE %s USING <expression>; '
                                'then run this ALTER TABLE again.', p_event_table, p_column, p_type);
    END;
END
$$;

-- Brings one tracked table's registry row, event table and trigger
-- functions in step with the table as it is now. p_before is the table's
-- entry of _schema_snapshot() taken before the change (NULL when unknown:
-- then a renamed column looks like a dropped one plus a new one);
-- p_partitions_changed says partitions came or went.
-- Refuses, so that the ALTER TABLE rolls back, changes that would leave
-- the table half-tracked: a rename onto a name the event table already
-- uses, dropping the last column of `fields` or of a tracker's `changed`,
-- a condition that no longer compiles, history that does not convert.
CREATE FUNCTION pghistory._follow_schema_change(p_tracked regclass, p_before jsonb,
                                                p_partitions_changed boolean DEFAULT false)
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_config pghistory.tracked;
    v_original pghistory.tracked;
    v_rename record;
    v_tracker pghistory.tracker;
    v_trackers pghistory.tracker[] := '{}';
    v_column record;
    v_key record;
    v_message text;
    v_signature text;     -- what the trigger functions say they were generated from
    v_table text := pghistory._qualified_name(p_tracked);
BEGIN
    SELECT * INTO v_config FROM pghistory.tracked AS t WHERE t.tracked_table = p_tracked;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    v_original := v_config;

    -- Following a change means altering the event table and replacing the
    -- trigger functions, as their owner: say so when that is someone else
    -- (typically: a superuser tracked a table another role owns and alters).
    SELECT string_agg(DISTINCT quote_ident(pg_get_userbyid(o.owner)), ', ') INTO v_message
      FROM (SELECT c.relowner AS owner FROM pg_catalog.pg_class AS c WHERE c.oid = v_config.event_table
            UNION
            SELECT p.proowner FROM pghistory._table_tree(p_tracked) AS t
              JOIN pg_catalog.pg_trigger AS g ON g.tgrelid = t.relid
              JOIN pg_catalog.pg_proc AS p ON p.oid = g.tgfoid
             WHERE p.pronamespace = 'pghistory'::regnamespace
               AND p.proname <> '_refuse_history_change') AS o
     WHERE NOT pg_has_role(current_user, o.owner, 'USAGE');
    IF v_message IS NOT NULL THEN
        RAISE EXCEPTION 'pghistory: % cannot follow this change of %, whose history and trigger functions belong to %',
                quote_ident(current_user), v_table, v_message
            USING ERRCODE = 'insufficient_privilege',
                  HINT = format('Alter the table as a role that is a member of %s (or as a superuser), '
                                'or have it track the table afresh so that its history belongs to the table''s owner.',
                                v_message);
    END IF;

    -- renamed columns: the same attnum under another name
    FOR v_rename IN
        SELECT b.value ->> 0 AS old_name, a.attname AS new_name
          FROM jsonb_each(p_before -> 'columns') AS b
          JOIN pg_catalog.pg_attribute AS a
            ON a.attrelid = p_tracked AND a.attnum = b.key::int2 AND NOT a.attisdropped
         WHERE a.attname <> b.value ->> 0
    LOOP
        IF EXISTS (SELECT FROM pg_catalog.pg_attribute AS e
                    WHERE e.attrelid = v_config.event_table AND e.attname = v_rename.old_name
                      AND e.attnum > 0 AND NOT e.attisdropped) THEN
            IF EXISTS (SELECT FROM pg_catalog.pg_attribute AS e
                        WHERE e.attrelid = v_config.event_table AND e.attname = v_rename.new_name
                          AND e.attnum > 0 AND NOT e.attisdropped) THEN
                RAISE EXCEPTION 'pghistory: cannot rename column % of % to %: its event table % already has a column %',
                        quote_ident(v_rename.old_name), v_table, quote_ident(v_rename.new_name),
                        v_config.event_table, quote_ident(v_rename.new_name)
                    USING ERRCODE = 'duplicate_column',
                          DETAIL = 'That column holds the history of an earlier column of the same name.',
                          HINT = format('Rename the old history first: ALTER TABLE %s RENAME COLUMN %I TO <another name>.',
                                        v_config.event_table, v_rename.new_name);
            END IF;
            EXECUTE format('ALTER TABLE %s RENAME COLUMN %I TO %I', v_config.event_table,
                           v_rename.old_name, v_rename.new_name);
        END IF;
        v_config.fields := array_replace(v_config.fields, v_rename.old_name, v_rename.new_name::text);
        v_config.exclude := array_replace(v_config.exclude, v_rename.old_name, v_rename.new_name::text);
        v_trackers := '{}';
        FOREACH v_tracker IN ARRAY v_config.trackers LOOP
            v_tracker.changed := array_replace(v_tracker.changed, v_rename.old_name, v_rename.new_name::text);
            v_tracker.condition := pghistory._rename_in_condition(v_tracker.condition, v_rename.old_name,
                                                                  v_rename.new_name);
            v_trackers := v_trackers || v_tracker;
        END LOOP;
        v_config.trackers := v_trackers;
    END LOOP;

    -- dropped columns: names the configuration gives that the table no longer has
    IF v_config.fields IS NOT NULL THEN
        v_config.fields := ARRAY(SELECT f FROM unnest(v_config.fields) AS f
                                  WHERE EXISTS (SELECT FROM pg_catalog.pg_attribute AS a
                                                 WHERE a.attrelid = p_tracked AND a.attname = f
                                                   AND a.attnum > 0 AND NOT a.attisdropped));
        IF v_config.fields = '{}' THEN
            RAISE EXCEPTION 'pghistory: this change leaves no column to track in % (fields => %)',
                    v_table, quote_literal(v_original.fields::text)
                USING ERRCODE = 'dependent_objects_still_exist',
                      HINT = format('Untrack the table first (SELECT pghistory.untrack(%L)), '
                                    'or track() it with other fields.', v_table);
        END IF;
    END IF;
    v_config.exclude := nullif(ARRAY(SELECT x FROM unnest(v_config.exclude) AS x
                                      WHERE EXISTS (SELECT FROM pg_catalog.pg_attribute AS a
                                                     WHERE a.attrelid = p_tracked AND a.attname = x
                                                       AND a.attnum > 0 AND NOT a.attisdropped)), '{}');
    v_trackers := '{}';
    FOREACH v_tracker IN ARRAY v_config.trackers LOOP
        IF v_tracker.changed IS NOT NULL THEN
            v_tracker.changed := ARRAY(SELECT c FROM unnest(v_tracker.changed) AS c
                                        WHERE EXISTS (SELECT FROM pg_catalog.pg_attribute AS a
                                                       WHERE a.attrelid = p_tracked AND a.attname = c
                                                         AND a.attnum > 0 AND NOT a.attisdropped));
            IF v_tracker.changed = '{}' THEN
                RAISE EXCEPTION 'pghistory: tracker "%" of % fires when % changes, and this change drops it',
                        v_tracker.label, v_table,
                        array_to_string(ARRAY(SELECT quote_ident(c) FROM unnest(
                            (SELECT t.changed FROM unnest(v_original.trackers) AS t
                              WHERE t.label = v_tracker.label)) AS c), ', ')
                    USING ERRCODE = 'dependent_objects_still_exist',
                          HINT = 'Reconfigure the tracker first with pghistory.track(... trackers => ...), '
                                 'watching other columns (or changed => NULL), then alter the table.';
            END IF;
        END IF;
        v_trackers := v_trackers || v_tracker;
    END LOOP;
    v_config.trackers := v_trackers;

    -- the configuration must still hold: columns to track, conditions that compile
    PERFORM pghistory._tracked_columns(p_tracked, v_config.fields, v_config.exclude);
    BEGIN
        PERFORM pghistory._check_trackers(p_tracked, v_config.trackers);
    EXCEPTION WHEN invalid_parameter_value THEN
        GET STACKED DIAGNOSTICS v_message = MESSAGE_TEXT;
        RAISE EXCEPTION '%', v_message
            USING ERRCODE = 'dependent_objects_still_exist',
                  DETAIL = format('The condition is part of how %s is tracked, and this change breaks it.', v_table),
                  HINT = 'Change the tracker first with pghistory.track(... trackers => ...), then alter the table.';
    END;

    IF v_config IS DISTINCT FROM v_original THEN
        UPDATE pghistory.tracked AS t
           SET fields = v_config.fields, exclude = v_config.exclude, trackers = v_config.trackers
         WHERE t.tracked_table = p_tracked;
    END IF;

    -- the event table: new columns added, changed types converted
    PERFORM pghistory._add_event_columns(v_config);
    FOR v_column IN
        SELECT c.column_name, c.column_type,
               CASE WHEN a.attcollation <> e.attcollation AND a.attcollation <> 0
                    THEN format(' COLLATE %I.%I', cn.nspname, co.collname) ELSE '' END AS collation
          FROM pghistory._tracked_columns(p_tracked, v_config.fields, v_config.exclude) AS c
          JOIN pg_catalog.pg_attribute AS a ON a.attrelid = p_tracked AND a.attname = c.column_name
          JOIN pg_catalog.pg_attribute AS e ON e.attrelid = v_config.event_table AND e.attname = c.column_name
                                           AND e.attnum > 0 AND NOT e.attisdropped
          LEFT JOIN pg_catalog.pg_collation AS co ON co.oid = a.attcollation
          LEFT JOIN pg_catalog.pg_namespace AS cn ON cn.oid = co.collnamespace
         WHERE (a.atttypid, a.atttypmod) IS DISTINCT FROM (e.atttypid, e.atttypmod)
            OR (a.attcollation <> e.attcollation AND a.attcollation <> 0)
         ORDER BY a.attnum
    LOOP
        PERFORM pghistory._convert_event_column(v_config.event_table, v_column.column_name,
                                                v_column.column_type, v_column.collation, p_tracked);
    END LOOP;
    -- pgh_obj_id follows the type of the primary key
    SELECT k.column_name, k.column_type INTO v_key FROM pghistory._primary_key(p_tracked) AS k;
    IF FOUND AND v_key.column_type IS DISTINCT FROM (
            SELECT format_type(e.atttypid, e.atttypmod) FROM pg_catalog.pg_attribute AS e
             WHERE e.attrelid = v_config.event_table AND e.attname = 'pgh_obj_id' AND NOT e.attisdropped) THEN
        PERFORM pghistory._convert_event_column(v_config.event_table, 'pgh_obj_id', v_key.column_type, '',
                                                p_tracked);
    END IF;

    -- Partitions that left the tree keep no trigger of the table.
    PERFORM pghistory._drop_detached_triggers(p_tracked);
    -- The trigger functions and triggers, regenerated when what they were
    -- generated from changed (their comment says, see
    -- _generation_signature()) and the table has its triggers. Not when
    -- they are missing: pg_restore adds primary keys after restoring the
    -- registry, while (in parallel) it restores the triggers, each the way
    -- it was. And when partitions came or went, if the trigger functions
    -- are there, triggers or not: a partitioned table tracked for TRUNCATE
    -- alone has no trigger until it has a partition (pg_restore makes
    -- partitions before it fills the registry, so never gets here then).
    v_signature := (SELECT obj_description(f, 'pg_proc')
                      FROM pghistory._tracker_functions(p_tracked) AS f LIMIT 1);
    IF (p_partitions_changed AND v_signature IS NOT NULL)
       OR (pghistory._generation_signature(p_tracked) IS DISTINCT FROM v_signature
           AND EXISTS (SELECT FROM pghistory._table_tree(p_tracked) AS t
                         JOIN pg_catalog.pg_trigger AS g ON g.tgrelid = t.relid
                         JOIN pg_catalog.pg_proc AS p ON p.oid = g.tgfoid
                        WHERE p.pronamespace = 'pghistory'::regnamespace
                          AND p.proname <> '_refuse_history_change')) THEN
        PERFORM pghistory._generate_triggers(p_tracked);
    END IF;
END
$$;

-- Drops the triggers a tracked table's trigger functions still have on
-- tables that are no longer its partitions (after DETACH PARTITION).
CREATE FUNCTION pghistory._drop_detached_triggers(p_tracked regclass)
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_trigger record;
BEGIN
    FOR v_trigger IN
        SELECT g.tgname, g.tgrelid::regclass AS relation
          FROM pg_catalog.pg_trigger AS g
         WHERE g.tgfoid IN (
                   -- the functions of the triggers on the table and its partitions
                   SELECT r.tgfoid FROM pghistory._table_tree(p_tracked) AS t
                     JOIN pg_catalog.pg_trigger AS r ON r.tgrelid = t.relid
                     JOIN pg_catalog.pg_proc AS p ON p.oid = r.tgfoid
                    WHERE p.pronamespace = 'pghistory'::regnamespace AND p.proname <> '_refuse_history_change'
                   UNION
                   -- and those named after its trackers (truncate may have no other trigger left)
                   SELECT p.oid FROM pghistory.tracked AS c
                    CROSS JOIN LATERAL unnest(c.trackers) AS k
                     JOIN pg_catalog.pg_proc AS p
                       ON p.pronamespace = 'pghistory'::regnamespace
                      AND p.proname = pghistory._trigger_function_name(p_tracked, k.label)
                    WHERE c.tracked_table = p_tracked)
           AND NOT g.tgisinternal AND g.tgparentid = 0
           AND g.tgrelid NOT IN (SELECT t.relid FROM pghistory._table_tree(p_tracked) AS t)
    LOOP
        EXECUTE format('DROP TRIGGER %I ON %s', v_trigger.tgname, v_trigger.relation);
    END LOOP;
END
$$;

-- Forgets tracked tables that were dropped: their registry rows, and the
-- trigger functions named after them that no trigger uses any more. The
-- event tables (the history) stay. Only touches rows whose table no
-- longer exists, so it is safe to let anyone run it; SECURITY DEFINER
-- because the registry's row-level security cannot tell who owned a table
-- that is gone. Returns how many tables were forgotten.
CREATE FUNCTION pghistory._forget_dropped_tables(p_tables oid[], p_names text[])
RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_row record;
    v_function regprocedure;
    v_count integer := 0;
BEGIN
    FOR v_row IN
        DELETE FROM pghistory.tracked AS t
         USING unnest(p_tables, p_names) AS d(relid, name)
         WHERE t.tracked_table::oid = d.relid
           AND NOT EXISTS (SELECT FROM pg_catalog.pg_class AS c WHERE c.oid = d.relid)
        RETURNING d.name, t.trackers
    LOOP
        v_count := v_count + 1;
        FOR v_function IN
            SELECT p.oid::regprocedure
              FROM unnest(v_row.trackers) AS k
              JOIN pg_catalog.pg_proc AS p
                ON p.pronamespace = 'pghistory'::regnamespace
               AND p.proname = pghistory._fit_identifier(v_row.name || '/' || k.label)
               AND p.pronargs = 0 AND p.prorettype = 'trigger'::regtype
             WHERE NOT EXISTS (SELECT FROM pg_catalog.pg_trigger AS g WHERE g.tgfoid = p.oid)
               AND NOT EXISTS (SELECT FROM pg_catalog.pg_depend AS d
                                WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e')
        LOOP
            EXECUTE format('DROP FUNCTION %s', v_function);
        END LOOP;
    END LOOP;
    RETURN v_count;
END
$$;

-- Refuses an event table that lost a column (of p_had, the columns it had
-- before the command) its tracked table's events are written to: renamed
-- or dropped by ALTER TABLE on the event table.
CREATE FUNCTION pghistory._check_event_table(p_config pghistory.tracked, p_had text[])
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_missing text;
BEGIN
    SELECT string_agg(quote_ident(c.name), ', ' ORDER BY c.ord) INTO v_missing
      FROM unnest(ARRAY['pgh_id', 'pgh_created_at', 'pgh_label', 'pgh_obj_id']
                  || CASE WHEN p_config.context IN ('fk', 'json') THEN ARRAY['pgh_context_id'] ELSE '{}' END
                  || CASE WHEN p_config.context = 'json' THEN ARRAY['pgh_context'] ELSE '{}' END
                  || ARRAY(SELECT t.column_name::text FROM pghistory._tracked_columns(
                               p_config.tracked_table, p_config.fields, p_config.exclude) AS t))
           WITH ORDINALITY AS c(name, ord)
     WHERE c.name = ANY (p_had)
       AND NOT EXISTS (SELECT FROM pg_catalog.pg_attribute AS a
                        WHERE a.attrelid = p_config.event_table AND a.attname = c.name
                          AND a.attnum > 0 AND NOT a.attisdropped);
    IF v_missing IS NOT NULL THEN
        RAISE EXCEPTION 'pghistory: % is the event table of %, whose events need its column %',
                pghistory._qualified_name(p_config.event_table), pghistory._qualified_name(p_config.tracked_table),
                v_missing
            USING ERRCODE = 'dependent_objects_still_exist',
                  HINT = 'Columns that receive history cannot be renamed or dropped while the table is tracked: '
                         'stop tracking the column first (track() with fields or exclude), or untrack the table.';
    END IF;
END
$$;

-- ddl_command_start of ALTER TABLE and ALTER SCHEMA: remember what the
-- tracked tables look like, for pghistory._after_ddl() to compare.
CREATE FUNCTION pghistory._before_ddl()
RETURNS event_trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF pghistory._following_schema() THEN
        RETURN;
    END IF;
    PERFORM set_config('pghistory._schema_before', pghistory._schema_snapshot()::text, true);
END
$$;

-- ddl_command_end of ALTER TABLE, CREATE TABLE and ALTER SCHEMA: follows
-- the changes of the tracked tables that the command changed (their
-- columns, names, primary keys or partitions).
CREATE FUNCTION pghistory._after_ddl()
RETURNS event_trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_before jsonb;
    v_after jsonb;
    v_candidates regclass[];
    v_changed regclass[];
    v_table regclass;
BEGIN
    IF pghistory._following_schema() THEN
        RETURN;
    END IF;
    -- The tracked tables this command may have changed: the relation it
    -- names, a tracked table whose event table or partition it is, or those
    -- in a schema it renames. Only those: other sessions change other
    -- tables meanwhile (a parallel pg_restore does), and are followed there.
    v_candidates := ARRAY(
        SELECT DISTINCT t.tracked_table
          FROM pg_event_trigger_ddl_commands() AS d
          JOIN pghistory.tracked AS t
            ON (d.classid = 'pg_class'::regclass
                AND (d.objid IN (t.tracked_table, t.event_table)
                     OR t.tracked_table IN (SELECT a.relid FROM pg_partition_ancestors(d.objid) AS a)))
            OR (d.classid = 'pg_namespace'::regclass
                AND d.objid IN (SELECT c.relnamespace FROM pg_catalog.pg_class AS c
                                 WHERE c.oid IN (t.tracked_table, t.event_table)))
         WHERE NOT d.in_extension);
    IF cardinality(v_candidates) = 0 THEN
        RETURN;
    END IF;
    IF TG_TAG = 'CREATE TABLE' THEN
        -- a new partition of a tracked table (at any depth): no before
        v_changed := v_candidates;
    ELSE
        v_before := nullif(current_setting('pghistory._schema_before', true), '')::jsonb;
        IF v_before IS NULL OR v_before = '{}' THEN
            RETURN;
        END IF;
        v_after := pghistory._schema_snapshot(v_candidates);
        v_changed := ARRAY(SELECT a.key::oid::regclass FROM jsonb_each(v_after) AS a
                            WHERE v_before ? a.key
                              AND (v_before -> a.key) - 'event_columns' <> a.value - 'event_columns');
        -- an event table keeps the columns its events are written to
        PERFORM pghistory._check_event_table(t, ARRAY(SELECT jsonb_array_elements_text(
                                                    v_before -> t.tracked_table::oid::text -> 'event_columns')))
           FROM pghistory.tracked AS t
          WHERE t.tracked_table = ANY (v_candidates)
            AND t.event_table::oid IN (SELECT d.objid FROM pg_event_trigger_ddl_commands() AS d
                                        WHERE d.classid = 'pg_class'::regclass);
    END IF;
    IF cardinality(v_changed) = 0 THEN
        RETURN;
    END IF;
    PERFORM set_config('pghistory._following_schema', 'on', true);
    FOREACH v_table IN ARRAY v_changed LOOP
        PERFORM pghistory._follow_schema_change(v_table, v_before -> v_table::oid::text,
                    TG_TAG = 'CREATE TABLE'
                    OR v_before -> v_table::oid::text -> 'tree' IS DISTINCT FROM v_after -> v_table::oid::text -> 'tree');
    END LOOP;
    IF v_before IS NOT NULL THEN  -- the next command of the statement compares with what is now
        PERFORM set_config('pghistory._schema_before',
                           (v_before || pghistory._schema_snapshot(v_changed))::text, true);
    END IF;
    PERFORM set_config('pghistory._following_schema', '', true);
END
$$;

-- sql_drop: a dropped tracked table is forgotten (its history stays); an
-- event table cannot be dropped while its table is tracked; columns of
-- tracked tables dropped by DROP ... CASCADE (of a type, say) are followed
-- like ALTER TABLE ... DROP COLUMN.
CREATE FUNCTION pghistory._on_drop()
RETURNS event_trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_dropped oid[];
    v_names text[];
    v_history record;
    v_table regclass;
    v_tables regclass[];
BEGIN
    IF pghistory._following_schema() THEN
        RETURN;
    END IF;

    SELECT e.event_table, e.tracked_table INTO v_history
      FROM pg_event_trigger_dropped_objects() AS d
      JOIN pghistory.tracked AS e ON e.event_table::oid = d.objid
     WHERE d.classid = 'pg_class'::regclass AND d.objsubid = 0
       AND EXISTS (SELECT FROM pg_catalog.pg_class AS c WHERE c.oid = e.tracked_table)
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'pghistory: % holds the history of %, which is still tracked',
                (SELECT d.object_identity FROM pg_event_trigger_dropped_objects() AS d
                  WHERE d.objid = v_history.event_table::oid AND d.objsubid = 0 LIMIT 1),
                pghistory._qualified_name(v_history.tracked_table)
            USING ERRCODE = 'dependent_objects_still_exist',
                  HINT = format('SELECT pghistory.untrack(%L, drop_events => true) drops both; '
                                'untrack() alone stops tracking and keeps the history.',
                                pghistory._qualified_name(v_history.tracked_table));
    END IF;

    PERFORM set_config('pghistory._following_schema', 'on', true);
    SELECT array_agg(d.objid), array_agg(d.address_names[1] || '.' || d.address_names[2])
      INTO v_dropped, v_names
      FROM pg_event_trigger_dropped_objects() AS d
     WHERE d.classid = 'pg_class'::regclass AND d.objsubid = 0
       AND d.objid IN (SELECT t.tracked_table::oid FROM pghistory.tracked AS t);
    IF v_dropped IS NOT NULL THEN
        PERFORM pghistory._forget_dropped_tables(v_dropped, v_names);
    END IF;

    -- ALTER TABLE ... DROP COLUMN is followed by _after_ddl(); other drops can
    -- take columns with them
    IF TG_TAG <> 'ALTER TABLE' THEN
        v_tables := ARRAY(SELECT DISTINCT t.tracked_table
                            FROM pg_event_trigger_dropped_objects() AS d
                            JOIN pghistory.tracked AS t ON t.tracked_table::oid = d.objid
                           WHERE d.classid = 'pg_class'::regclass AND d.objsubid > 0
                             AND EXISTS (SELECT FROM pg_catalog.pg_class AS c WHERE c.oid = d.objid));
        FOREACH v_table IN ARRAY v_tables LOOP
            PERFORM pghistory._follow_schema_change(v_table, NULL);
        END LOOP;
    END IF;

    PERFORM set_config('pghistory._following_schema', '', true);
END
$$;

-- Brings a tracked table in step with its columns after ALTER TABLE, what
-- the event triggers do by themselves when they are installed (see
-- pghistory.install_event_triggers()). Adds new columns to the event
-- table, converts changed types, forgets dropped columns and regenerates
-- the trigger functions. It cannot tell a renamed column from a dropped
-- one and a new one: the old name keeps the history, the new name starts
-- a column of its own. Refuses untracked tables and non-owners.
CREATE FUNCTION pghistory.refresh(tbl regclass)
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT EXISTS (SELECT FROM pghistory.tracked AS t WHERE t.tracked_table = refresh.tbl) THEN
        RAISE EXCEPTION 'pghistory: % is not tracked', refresh.tbl
            USING ERRCODE = 'undefined_object',
                  HINT = 'SELECT * FROM pghistory.tracking lists the tracked tables.';
    END IF;
    IF NOT pghistory._owns(refresh.tbl) THEN
        RAISE EXCEPTION 'pghistory: only the owner of % can refresh its tracking', refresh.tbl
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'Run refresh() as the owner of the table or as a member of that role.';
    END IF;
    EXECUTE format('LOCK TABLE %s IN SHARE ROW EXCLUSIVE MODE', refresh.tbl);
    PERFORM set_config('pghistory._following_schema', 'on', true);
    PERFORM pghistory._follow_schema_change(refresh.tbl, NULL, true);
    PERFORM set_config('pghistory._following_schema', '', true);
END
$$;

-- Creates the event triggers that follow schema changes (those missing),
-- as members of the extension so that pg_dump leaves them to CREATE
-- EXTENSION. CREATE EXTENSION calls it when run by a superuser; a
-- superuser can call it later for an extension a non-superuser created.
-- Refuses other roles: only superusers may create event triggers.
-- Returns how many event triggers it created.
CREATE FUNCTION pghistory.install_event_triggers()
RETURNS integer
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_trigger record;
    v_count integer := 0;
BEGIN
    IF NOT (SELECT r.rolsuper FROM pg_catalog.pg_roles AS r WHERE r.rolname = current_user) THEN
        RAISE EXCEPTION 'pghistory: only a superuser can create the event triggers that follow schema changes'
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'Ask a superuser to run SELECT pghistory.install_event_triggers(). Until then, '
                         'run SELECT pghistory.refresh(''<table>'') after altering a tracked table.';
    END IF;
    FOR v_trigger IN
        SELECT * FROM (VALUES
            ('pghistory_before_ddl', 'ddl_command_start', '''ALTER TABLE'', ''ALTER SCHEMA''', '_before_ddl'),
            ('pghistory_after_ddl', 'ddl_command_end', '''ALTER TABLE'', ''CREATE TABLE'', ''ALTER SCHEMA''', '_after_ddl'),
            ('pghistory_on_drop', 'sql_drop', NULL, '_on_drop')) AS t(name, event, tags, function)
         WHERE NOT EXISTS (SELECT FROM pg_catalog.pg_event_trigger AS e WHERE e.evtname = t.name)
    LOOP
        EXECUTE format('CREATE EVENT TRIGGER %I ON %s%s EXECUTE FUNCTION pghistory.%I()',
                       v_trigger.name, v_trigger.event,
                       CASE WHEN v_trigger.tags IS NOT NULL THEN ' WHEN TAG IN (' || v_trigger.tags || ')' ELSE '' END,
                       v_trigger.function);
        -- inside CREATE EXTENSION it is a member already
        IF NOT EXISTS (SELECT FROM pg_catalog.pg_depend AS d
                         JOIN pg_catalog.pg_event_trigger AS e ON e.oid = d.objid
                        WHERE d.classid = 'pg_event_trigger'::regclass AND e.evtname = v_trigger.name
                          AND d.deptype = 'e') THEN
            EXECUTE format('ALTER EXTENSION pghistory ADD EVENT TRIGGER %I', v_trigger.name);
        END IF;
        v_count := v_count + 1;
    END LOOP;
    RETURN v_count;
END
$$;

-- Only superusers may create event triggers: without them, tracking does
-- not follow ALTER TABLE by itself (see pghistory.refresh()). A WARNING,
-- since CREATE EXTENSION does not show notices of its script.
DO $$
BEGIN
    IF (SELECT r.rolsuper FROM pg_catalog.pg_roles AS r WHERE r.rolname = current_user) THEN
        PERFORM pghistory.install_event_triggers();
    ELSE
        RAISE WARNING 'pghistory: installed without the event triggers that follow ALTER TABLE (only a superuser can create them)'
            USING HINT = 'After altering a tracked table, run SELECT pghistory.refresh(''<table>''); '
                         'or ask a superuser to run SELECT pghistory.install_event_triggers().';
    END IF;
END
$$;
