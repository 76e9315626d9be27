-- bench: after track()
-- Taking pghistory's update trigger apart (see bench/targets.py and README, Performance):
-- the snapshot and the context row, inline, with no checks of the settings.
-- Replaces the function track('item') generated; measured with
--   ./tests/run --bench --no-django --workloads one_ctx --variant context=bench/variants/floor_context.sql
CREATE OR REPLACE FUNCTION pghistory."public.item/update"() RETURNS trigger
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    v_context_id uuid := nullif(current_setting('pghistory.context_id', true), '')::uuid;
BEGIN
    INSERT INTO public.item_event (pgh_label, pgh_obj_id, pgh_context_id, id, name, status, amount, updated_at)
    SELECT 'update', new.id, v_context_id, new.id, new.name, new.status, new.amount, new.updated_at
      FROM pgh_new_rows AS new;
    IF FOUND AND v_context_id IS NOT NULL THEN
        INSERT INTO pghistory.context (id, metadata)
        VALUES (v_context_id, current_setting('pghistory.context_metadata')::jsonb)
        ON CONFLICT (id) DO NOTHING;
    END IF;
    RETURN NULL;
END
$$;
