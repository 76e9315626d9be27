-- Proposal measured by the bench (bench/run.py --variant attach_without_probe=bench/variants/attach_without_probe.sql):
-- pghistory._attach_context without the NOT EXISTS probe.  INSERT ... ON CONFLICT DO NOTHING
-- takes no lock on an existing row, and the UPDATE that follows it (only when the row exists)
-- matches (and locks) it only when the metadata differs: the locking of the probe it replaces,
-- one statement fewer per new context.  A copy of context.sql's function with that change.
CREATE OR REPLACE FUNCTION pghistory._attach_context(p_context_id uuid)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_setting text := coalesce(current_setting('pghistory.context_metadata', true), '');
    v_marker text := p_context_id::text || v_setting;
    v_metadata jsonb;
BEGIN
    IF current_setting('pghistory._attached', true) = v_marker THEN
        RETURN;
    END IF;
    v_metadata := pghistory._context_metadata();
    INSERT INTO pghistory.context (id, metadata) VALUES (p_context_id, v_metadata)
    ON CONFLICT (id) DO NOTHING;
    IF NOT FOUND THEN
        UPDATE pghistory.context AS c SET metadata = v_metadata, updated_at = now()
         WHERE c.id = p_context_id AND c.metadata IS DISTINCT FROM v_metadata;
    END IF;
    PERFORM set_config('pghistory._attached', v_marker, true);
END
$$;
