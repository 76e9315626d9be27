-- pghistory: the source of the trigger functions track() generates, pinned.
-- Any change to what the generator writes shows here, line by line, in
-- review. The functions are found through the tables' triggers and printed
-- with pg_get_functiondef(), as \sf shows them; then each trigger.
\set VERBOSITY terse
CREATE EXTENSION pghistory;
CREATE SCHEMA gen;
CREATE ROLE regress_pgh_gen_owner;
GRANT CREATE, USAGE ON SCHEMA gen TO regress_pgh_gen_owner;
GRANT CREATE ON SCHEMA pghistory TO regress_pgh_gen_owner;

-- what a table's triggers call, and the triggers themselves
CREATE FUNCTION pg_temp.generated(p_table regclass)
RETURNS SETOF text LANGUAGE sql AS $$
    SELECT pg_get_functiondef(p.oid)
      FROM (SELECT DISTINCT t.tgfoid FROM pg_trigger AS t
             WHERE t.tgrelid = p_table AND NOT t.tgisinternal) AS t
      JOIN pg_proc AS p ON p.oid = t.tgfoid
     WHERE p.proname <> '_refuse_history_change'
     ORDER BY p.proname
$$;
CREATE FUNCTION pg_temp.triggers(p_table regclass)
RETURNS SETOF text LANGUAGE sql AS $$
    SELECT pg_get_triggerdef(t.oid) FROM pg_trigger AS t
     WHERE t.tgrelid = p_table AND NOT t.tgisinternal
     ORDER BY t.tgname
$$;
\pset format unaligned
\pset tuples_only on

-- statement level, context 'fk', the default trackers, owned by a superuser
-- (the function writes the context row itself)
CREATE TABLE gen.orders (id int PRIMARY KEY, status text NOT NULL, amount numeric);
SELECT pghistory.track('gen.orders');
SELECT pg_temp.generated('gen.orders');
SELECT pg_temp.triggers('gen.orders');

-- row level, context 'json', a changed list, a condition, snapshot 'old',
-- an excluded column and a manual tracker (which has no function)
CREATE TABLE gen.accounts (id bigint PRIMARY KEY, owner text, balance int, note text);
SELECT pghistory.track('gen.accounts',
    trackers => ARRAY[pghistory.insert_event(),
                      pghistory.update_event('balance_changed', changed => '{balance}', snapshot => 'old'),
                      pghistory.update_event('overdrawn', condition => 'NEW.balance < 0 AND OLD.balance >= 0'),
                      pghistory.delete_event(),
                      pghistory.truncate_event(),
                      pghistory.manual_event('audited')],
    exclude => '{note}', context => 'json', level => 'row');
SELECT pg_temp.generated('gen.accounts');
SELECT pg_temp.triggers('gen.accounts');

-- a composite key, statement level, a condition on the update pairing,
-- context 'fk' owned by a plain role (the function calls _attach_context())
SET ROLE regress_pgh_gen_owner;
CREATE TABLE gen.lines (order_id int, line int, qty int NOT NULL, price numeric,
                        PRIMARY KEY (order_id, line));
SELECT pghistory.track('gen.lines',
    trackers => ARRAY[pghistory.insert_event(condition => 'NEW.qty > 0'),
                      pghistory.update_event('qty_changed', changed => '{qty}',
                                             condition => 'NEW.qty <> OLD.qty + 0'),
                      pghistory.delete_event()]);
RESET ROLE;
SELECT pg_temp.generated('gen.lines');
SELECT pg_temp.triggers('gen.lines');

-- context 'none', row level
CREATE TABLE gen.tags (name text PRIMARY KEY);
SELECT pghistory.track('gen.tags', trackers => ARRAY[pghistory.insert_event()],
                       context => 'none', level => 'row');
SELECT pg_temp.generated('gen.tags');

-- partitioned tables: the statement triggers sit on every partition, and
-- TRUNCATE reads the partition it empties through dynamic SQL. Context 'fk'
-- owned by a plain role (the row count decides the context row), then
-- context 'json' owned by a superuser
SET ROLE regress_pgh_gen_owner;
CREATE TABLE gen.parts (id int PRIMARY KEY, v text) PARTITION BY RANGE (id);
CREATE TABLE gen.parts_1 PARTITION OF gen.parts FOR VALUES FROM (0) TO (100);
SELECT pghistory.track('gen.parts', trackers => ARRAY[pghistory.insert_event(), pghistory.truncate_event()]);
RESET ROLE;
SELECT pg_temp.generated('gen.parts_1');
SELECT pg_temp.triggers('gen.parts');
SELECT pg_temp.triggers('gen.parts_1');
CREATE TABLE gen.jparts (id int PRIMARY KEY, v text) PARTITION BY LIST (id);
CREATE TABLE gen.jparts_1 PARTITION OF gen.jparts FOR VALUES IN (1);
SELECT pghistory.track('gen.jparts', trackers => ARRAY[pghistory.truncate_event()], context => 'json');
SELECT pg_temp.generated('gen.jparts_1');

\pset format aligned
\pset tuples_only off
SELECT pghistory.untrack('gen.orders', drop_events => true);
SELECT pghistory.untrack('gen.accounts', drop_events => true);
SELECT pghistory.untrack('gen.lines', drop_events => true);
SELECT pghistory.untrack('gen.tags', drop_events => true);
SELECT pghistory.untrack('gen.parts', drop_events => true);
SELECT pghistory.untrack('gen.jparts', drop_events => true);
DROP SCHEMA gen CASCADE;
REVOKE CREATE ON SCHEMA pghistory FROM regress_pgh_gen_owner;
DROP ROLE regress_pgh_gen_owner;
DROP EXTENSION pghistory;
