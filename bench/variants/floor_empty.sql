-- bench: after track()
-- Taking pghistory's update trigger apart (see bench/targets.py and README, Performance):
-- a statement trigger with transition tables that writes nothing.
-- Replaces the function track('item') generated; measured with
--   ./tests/run --bench --no-django --workloads one_ctx --variant empty=bench/variants/floor_empty.sql
CREATE OR REPLACE FUNCTION pghistory."public.item/update"() RETURNS trigger
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    v_context_id uuid := nullif(current_setting('pghistory.context_id', true), '')::uuid;
BEGIN
    RETURN NULL;
END
$$;
