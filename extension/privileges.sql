
-- ---------------------------------------------------------------------------
-- privileges.sql: every GRANT, REVOKE and row-level-security policy of the
-- extension's own objects, in one place, so the security model can be
-- audited here
-- ---------------------------------------------------------------------------

-- Every role may call pghistory's functions (set_context() above all);
-- what they may read or change is decided by the grants on each table.
-- The SECURITY DEFINER functions are the exceptions, each revoked from
-- PUBLIC here unless its header says why it is harmless for every role.
GRANT USAGE ON SCHEMA pghistory TO PUBLIC;

-- Every event table takes its pgh_id from pghistory.event_id_seq, inserting
-- as its owner: every role may draw numbers from it (which gives nothing but
-- a gap in pgh_ids); moving it (setval) is for its owner and superusers
-- (pghistory._event_ids_past()).
GRANT USAGE ON SEQUENCE pghistory.event_id_seq TO PUBLIC;
GRANT USAGE ON SEQUENCE pghistory.node_event_id_seq TO PUBLIC;

-- Context rows are created only by the trigger functions of tracked
-- tables: _grant_attach_context() grants EXECUTE to the owners of tables
-- tracked with context 'fk' (their trigger functions run as them), and to
-- nobody else.
REVOKE EXECUTE ON FUNCTION pghistory._attach_context(uuid, text) FROM PUBLIC;

-- The registry changes only through pghistory's own functions
-- (registry.sql: SECURITY DEFINER, each re-checking ownership of the
-- tracked table and its event table); everyone may read it.
-- (Row-level security stays on, with one policy for reading: should a
-- write grant ever be given by mistake, it still writes nothing.)
ALTER TABLE pghistory.tracked ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS everyone_reads ON pghistory.tracked;
CREATE POLICY everyone_reads ON pghistory.tracked FOR SELECT USING (true);
DROP POLICY IF EXISTS owners_register ON pghistory.tracked;
DROP POLICY IF EXISTS owners_change ON pghistory.tracked;
DROP POLICY IF EXISTS owners_remove ON pghistory.tracked;
REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON pghistory.tracked FROM PUBLIC;
GRANT SELECT ON pghistory.tracked TO PUBLIC;
-- what every hint tells users to query
GRANT SELECT ON pghistory.tracking TO PUBLIC;

-- Readers of history run the browsing functions with their own rights, so
-- they must see which tables are tracked and how; the same facts are public
-- in pg_trigger and pg_proc (the generated trigger functions) anyway.
GRANT SELECT (tracked_table, event_table, trackers, fields, exclude) ON pghistory.tracked TO PUBLIC;
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

-- Time travel and undo run with the caller's rights (SECURITY INVOKER):
-- as_of(), changes() and blame() read what the caller may read of the
-- table and its event table; backfill() writes the event table, which only
-- its owner may (unless granted INSERT); revert_context() writes the
-- tracked tables as the caller. So calling them gives nobody anything:
-- they are for everyone, as PostgreSQL's default for functions is.
GRANT EXECUTE ON FUNCTION pghistory.backfill(regclass, text),
                          pghistory.as_of(anyelement, timestamptz),
                          pghistory.as_of(anyelement, timestamptz, anycompatible),
                          pghistory.changes(regclass, timestamptz, timestamptz),
                          pghistory.blame(regclass, anycompatible),
                          pghistory.revert_context(uuid, boolean, boolean) TO PUBLIC;

-- History at scale (partitions.sql, retention.sql, redact.sql,
-- maintain.sql). The policies and the record of redactions are written only
-- through _set_policy(), _forget_dropped_policies() and _record_redaction()
-- (SECURITY DEFINER, each checking the session user owns the event table).
-- Policies are public like the registry; a redaction is seen only by the
-- owners of its event table (obj_id may itself say whom it was about).
REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON pghistory.history_policy, pghistory.redaction FROM PUBLIC;
GRANT SELECT ON pghistory.history_policy TO PUBLIC;
ALTER TABLE pghistory.redaction ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS owners_read ON pghistory.redaction;
CREATE POLICY owners_read ON pghistory.redaction FOR SELECT
    USING (EXISTS (SELECT FROM pg_catalog.pg_class AS c
                    WHERE c.oid = event_table AND pg_catalog.pg_has_role(current_user, c.relowner, 'USAGE')));
GRANT SELECT ON pghistory.redaction TO PUBLIC;
-- set_retention(), prune(), redact(), maintain() and reset_identities() run
-- with the caller's rights and refuse (or skip) event tables the caller
-- does not own: for everyone.
GRANT EXECUTE ON FUNCTION pghistory.set_retention(regclass, interval, boolean),
                          pghistory.prune(regclass, timestamptz, boolean, interval),
                          pghistory.prune(regclass, interval, boolean, interval),
                          pghistory.redact(regclass, text, text[], text[]),
                          pghistory.redact(regclass, anyelement, text[], text[]),
                          pghistory.maintain(interval),
                          pghistory.reset_identities() TO PUBLIC;
