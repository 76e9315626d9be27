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
