-- bench: after track()
-- What the update trigger's join guard costs a one-row UPDATE: its function
-- without the SET clauses that keep the old/new pairing a hash join
-- (pghistory._trigger_settings, triggers.sql). Measurement only: without
-- them a connection whose first UPDATEs touched one row each keeps a
-- nested-loop plan, and a later UPDATE of 8,000 rows took 8.7 s instead of
-- 0.15 s (measured by hand on PostgreSQL 15).
ALTER FUNCTION pghistory."public.item/update"() RESET enable_nestloop;
ALTER FUNCTION pghistory."public.item/update"() RESET enable_mergejoin;
