
-- ---------------------------------------------------------------------------
-- append_only.sql: the guard that keeps event tables append-only
-- ---------------------------------------------------------------------------

-- Statement trigger on event tables: history is append-only unless a
-- maintenance transaction says otherwise (SET LOCAL
-- pghistory.allow_history_changes = on), e.g. to delete old history.
CREATE OR REPLACE FUNCTION pghistory._refuse_history_change()
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

-- Adds or removes the append-only guard of an event table and, when it is
-- partitioned, of each partition (statement triggers are not inherited).
CREATE OR REPLACE FUNCTION pghistory._set_append_only(p_event_table regclass, p_append_only boolean)
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_table regclass;
BEGIN
    IF (pghistory._citus_distribution(p_event_table)).kind IS NOT NULL THEN
        PERFORM pghistory._citus_set_append_only(p_event_table, p_append_only);
        RETURN;
    END IF;
    FOR v_table IN SELECT t.relid FROM pghistory._table_tree(p_event_table) AS t LOOP
        IF EXISTS (SELECT FROM pg_catalog.pg_trigger
                    WHERE tgrelid = v_table AND tgname = 'pgh_append_only') THEN
            EXECUTE format('DROP TRIGGER pgh_append_only ON %s', v_table);
        END IF;
        IF p_append_only THEN
            EXECUTE format('CREATE TRIGGER pgh_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON %s '
                           'FOR EACH STATEMENT EXECUTE FUNCTION pghistory._refuse_history_change()',
                           v_table);
        END IF;
    END LOOP;
END
$$;
