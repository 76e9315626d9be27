-- pghistory: history tracking for any table, in SQL and PL/pgSQL.
--
-- This script is assembled by the Makefile from the parts in extension/,
-- one concern each, in the order of its PARTS; each file's header says
-- what it holds. Every function pins search_path and names its objects
-- schema-qualified.

\echo Use "CREATE EXTENSION pghistory" to load this file. \quit
