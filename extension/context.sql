
-- ---------------------------------------------------------------------------
-- context.sql: who and why
--
--
-- The application describes the current context in two settings, the same
-- ones django-pghistory uses:
--   pghistory.context_id        a uuid naming the context
--   pghistory.context_metadata  a JSON object describing it
-- and can switch recording off with pghistory.enabled = off. Trigger
-- functions read these once per statement (once per row at level 'row').
-- Metadata set without an id is the context of the transaction: it gets
-- an id of its own, the same for every statement (_transaction_context_id).
--
-- The spellings each setting accepts are defined once, below: the readers
-- current_context_id() and _context_metadata() accept or refuse a value;
-- _usual_spelling() gives the inline test with which generated trigger
-- functions skip the reader for the usual spelling, a subset of what the
-- reader accepts (test_context_spellings.py checks that they agree).
-- ---------------------------------------------------------------------------

-- Whether events are recorded now: pghistory.enabled unset or on. Called
-- by the generated trigger functions (only when the setting is not in its
-- usual spelling), so current_user is the tracked table's owner, whose
-- function that is. Recording off is honoured only for a session that
-- could skip the triggers anyway: one whose login role (session_user) is a
-- member of that owner, who may ALTER TABLE ... DISABLE TRIGGER (and
-- superusers). Anyone else's write is refused, not recorded silently, nor
-- left out of the history: a setting any session can set must not let a
-- writer change a table without a trace.
CREATE OR REPLACE FUNCTION pghistory._enabled()
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
        WHEN 'off', 'false', 'no', '0', 'f', 'n' THEN
            IF NOT pg_has_role(session_user, current_user, 'MEMBER') THEN
                RAISE EXCEPTION 'pghistory: % may not write without history (pghistory.enabled is off)', session_user
                    USING ERRCODE = 'insufficient_privilege',
                          DETAIL = format('Recording is switched off only for the owner of the tracked table (%I), '
                                          'its members and superusers, who could disable its triggers anyway.',
                                          current_user),
                          HINT = 'RESET pghistory.enabled to write with history, or write as the table''s owner.';
            END IF;
            RETURN false;
        ELSE
            RAISE EXCEPTION 'pghistory.enabled is "%", which is neither on nor off', v_setting
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'SET pghistory.enabled = off to stop recording, on (or RESET) to record again.';
    END CASE;
END
$$;

-- The inline test, over the PL/pgSQL expression p_value, that a value of
-- setting p_setting ('pghistory.context_id' or
-- 'pghistory.context_metadata') is in its usual spelling, which the value
-- then takes by a plain cast: a lower-case uuid with dashes, text between
-- braces. Anything else goes to the reader (current_context_id(),
-- _context_metadata()). Returns the test, laid out for the DECLARE
-- of a generated function (_context_declare).
CREATE OR REPLACE FUNCTION pghistory._usual_spelling(p_setting text, p_value text)
RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT replace(CASE p_setting
        WHEN 'pghistory.context_id' THEN $t$%%VALUE%% LIKE '________-____-____-____-____________'
                               AND %%VALUE%% ~ '^[-0-9a-f]+$'
                               AND length(replace(%%VALUE%%, '-', '')) = 32$t$
        WHEN 'pghistory.context_metadata' THEN $t$%%VALUE%% LIKE '{%}'$t$
    END, '%%VALUE%%', p_value)
$$;

-- The context id of a transaction that set pghistory.context_metadata
-- without pghistory.context_id: one per transaction, the same for each of
-- its statements and trigger calls, derived from the transaction's id
-- (pg_current_xact_id(), 64 bits, never reused in a cluster) and its start
-- (now(), which tells apart clusters whose histories meet, e.g. through a
-- restored dump). Nothing is stored and nothing is looked up. A version 8
-- (custom) uuid. Returns NULL on a standby, which has no transaction ids
-- (and records nothing).
CREATE OR REPLACE FUNCTION pghistory._transaction_context_id()
RETURNS uuid
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN NOT pg_is_in_recovery() THEN
               (substr(h, 1, 12) || '8' || substr(h, 14, 3)
                || substr('89ab', ('x' || substr(h, 17, 1))::bit(4)::int % 4 + 1, 1)
                || substr(h, 18, 15))::uuid
           END
      FROM (SELECT md5(pg_current_xact_id()::text || '/'
                       || floor(extract(epoch FROM now()) * 1000000)::bigint::text) AS h) AS t
$$;

-- The active context's id: pghistory.context_id, a uuid in any spelling
-- PostgreSQL reads (upper case, without dashes, in braces); when only
-- pghistory.context_metadata is set, the transaction's own id
-- (_transaction_context_id()); NULL when neither is set. Refuses any other
-- context_id.
CREATE OR REPLACE FUNCTION pghistory.current_context_id()
RETURNS uuid
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_setting text := current_setting('pghistory.context_id', true);
BEGIN
    IF v_setting IS NULL OR v_setting = '' THEN
        RETURN CASE WHEN current_setting('pghistory.context_metadata', true) <> ''
                    THEN pghistory._transaction_context_id() END;
    END IF;
    IF v_setting !~* '^\{?[0-9a-f]{8}-?([0-9a-f]{4}-?){3}[0-9a-f]{12}\}?$' THEN
        RAISE EXCEPTION 'pghistory.context_id is "%", which is not a uuid', left(v_setting, 100)
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Start contexts with pghistory.set_context(), or set pghistory.context_id to a uuid.';
    END IF;
    RETURN v_setting::uuid;
END
$$;
COMMENT ON FUNCTION pghistory.current_context_id() IS
    'pghistory: the active context''s id (the setting pghistory.context_id; with only pghistory.context_metadata '
    'set, one id for the transaction), or NULL';

-- The active context's metadata: pghistory.context_metadata as a JSON
-- object, blanks around allowed ('{}' when unset). Anything else is an
-- error, raised before the trigger writes: a user's change is never
-- recorded with metadata dropped. (No exception block: this runs once per
-- transaction and context, and a subtransaction there would cost more than
-- the rest of the check. Text that looks like an object but is not valid
-- JSON fails in the cast, with PostgreSQL's own message.)
CREATE OR REPLACE FUNCTION pghistory._context_metadata()
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

-- Makes sure the context row p_context_id exists, for the trigger
-- functions of owners who cannot write pghistory.context themselves (the
-- others do the same inline, see _create_trigger): a new row carries
-- p_metadata (the text of pghistory.context_metadata) and the session
-- user as its creator; an existing row gets p_metadata only when the same
-- session user created it (_refresh_context()). Called after events were
-- written under p_context_id, once per statement.
-- SECURITY DEFINER, so that writers need no privilege on pghistory.context;
-- EXECUTE is revoked from PUBLIC and granted only to the owners of tables
-- tracked with context 'fk' (_grant_attach_context(), privileges.sql), whose
-- trigger functions run as them: a role can create a context row only by
-- writing a tracked table it may write.
-- A new context (the common case) costs one INSERT that locks nothing but
-- its own new row.
CREATE OR REPLACE FUNCTION pghistory._attach_context(p_context_id uuid, p_metadata text)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    -- the usual spelling (_usual_spelling('pghistory.context_metadata',
    -- 'p_metadata'), written out: test_context_spellings.py checks it) is
    -- cast at once; anything else is _context_metadata()'s to read or refuse
    v_metadata jsonb := CASE WHEN p_metadata LIKE '{%}' THEN p_metadata::jsonb
                             ELSE pghistory._context_metadata() END;
BEGIN
    INSERT INTO pghistory.context (id, metadata, created_by)
    VALUES (p_context_id, v_metadata, session_user)
    ON CONFLICT (id) DO NOTHING;
    IF NOT FOUND THEN
        PERFORM pghistory._refresh_context(p_context_id, v_metadata);
    END IF;
END
$$;

-- Sets the metadata of an existing context row, if it differs and the
-- session user created the row (a role never changes another role's
-- context). The UPDATE locks the row only when it changes it, so
-- transactions sharing a context id do not queue (or deadlock) on its row.
-- enable_seqscan is off because this plan is cached for the life of a
-- connection: planned while pghistory.context is still empty, it would
-- keep scanning the whole table for every context once the table has
-- grown. Called where a context row is attached, when its INSERT found the
-- row there.
CREATE OR REPLACE FUNCTION pghistory._refresh_context(p_context_id uuid, p_metadata jsonb)
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
SET enable_seqscan = off
AS $$
BEGIN
    UPDATE pghistory.context AS c
       SET metadata = p_metadata, updated_at = now()
     WHERE c.id = p_context_id AND c.created_by = session_user
       AND c.metadata IS DISTINCT FROM p_metadata;
END
$$;

-- Grants EXECUTE on _attach_context() to the owners of the tables tracked
-- with context 'fk' whose trigger functions call it (those who cannot
-- write pghistory.context themselves), and revokes it from every other
-- role that has it: track(), untrack() and the forgetting of dropped
-- tables call it after they changed the registry. SECURITY DEFINER (only
-- the extension's owner may grant); harmless for every role, since what it
-- does depends on the registry alone, which only pghistory's functions
-- change: EXECUTE stays with PUBLIC. Returns nothing.
CREATE OR REPLACE FUNCTION pghistory._grant_attach_context()
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_function oid := 'pghistory._attach_context(uuid, text)'::regprocedure;
    v_context_owner oid := (SELECT c.relowner FROM pg_catalog.pg_class AS c
                             WHERE c.oid = 'pghistory.context'::regclass);
    v_role record;
BEGIN
    FOR v_role IN
        WITH needed AS (
            SELECT DISTINCT c.relowner AS role
              FROM pghistory.tracked AS t
              JOIN pg_catalog.pg_class AS c ON c.oid = t.tracked_table
             WHERE t.context = 'fk' AND NOT pg_has_role(c.relowner, v_context_owner, 'USAGE')),
        granted AS (
            SELECT a.grantee AS role
              FROM pg_catalog.pg_proc AS p, aclexplode(p.proacl) AS a
             WHERE p.oid = v_function AND a.privilege_type = 'EXECUTE'
               AND a.grantee NOT IN (0, p.proowner))
        SELECT coalesce(n.role, g.role) AS role, n.role IS NOT NULL AS needed
          FROM needed AS n FULL JOIN granted AS g ON g.role = n.role
         WHERE n.role IS NULL OR g.role IS NULL
    LOOP
        EXECUTE format(CASE WHEN v_role.needed THEN 'GRANT EXECUTE ON FUNCTION %s TO %I'
                            ELSE 'REVOKE EXECUTE ON FUNCTION %s FROM %I' END,
                       v_function::regprocedure, pg_get_userbyid(v_role.role));
    END LOOP;
END
$$;

-- Starts a context, or merges p_metadata into the active one (its keys
-- win). Returns the context id. With p_is_local (the default) the context
-- ends with the current transaction; otherwise it lasts for the session
-- until pghistory.clear_context().
CREATE OR REPLACE FUNCTION pghistory.set_context(metadata jsonb, is_local boolean DEFAULT true)
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
    IF is_local AND pg_catalog.to_regclass('pg_catalog.pg_dist_partition') IS NOT NULL THEN
        -- Citus passes settings on to the nodes a transaction writes on
        -- only when they are made by SET LOCAL, and told to (citus.sql)
        PERFORM pghistory._citus_set_local(ARRAY['pghistory.context_id', 'pghistory.context_metadata'],
                                           ARRAY[v_context_id::text, v_metadata::text]);
    ELSE
        PERFORM set_config('pghistory.context_id', v_context_id::text, is_local);
        PERFORM set_config('pghistory.context_metadata', v_metadata::text, is_local);
    END IF;
    RETURN v_context_id;
END
$$;
COMMENT ON FUNCTION pghistory.set_context(jsonb, boolean) IS
    'pghistory: start a context, or merge metadata into the active one; for the transaction (is_local) or the session. '
    'Returns the context id';

-- Ends the active context, for the session and the current transaction.
CREATE OR REPLACE FUNCTION pghistory.clear_context()
RETURNS void
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT set_config('pghistory.context_id', '', false),
           set_config('pghistory.context_metadata', '', false)
$$;
COMMENT ON FUNCTION pghistory.clear_context() IS
    'pghistory: end the active context, for the session and the current transaction';
