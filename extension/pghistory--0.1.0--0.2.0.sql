\echo Use "ALTER EXTENSION pghistory UPDATE TO '0.2.0'" to load this file. \quit

-- pghistory 0.1.0 -> 0.2.0.
--
-- This file holds what the code parts cannot redo by themselves: changes
-- to the extension's tables and types, and functions or views that are
-- dropped or change their signature. The Makefile appends every code part
-- (CREATE OR REPLACE of each function and view, privileges.sql) and
-- update_end.sql (regenerates the trigger functions) to build the script
-- that ALTER EXTENSION runs.
