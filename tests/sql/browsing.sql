-- pghistory: browsing history, as a DBA sees it in psql.
\set VERBOSITY terse
CREATE EXTENSION pghistory;
CREATE SCHEMA shop;

-- the view exists before anything is tracked
SELECT count(*) AS events FROM pghistory.aggregate_events;

-- two tables: orders with contexts in pghistory.context (fk), customers
-- carrying them in each event (json)
CREATE TABLE shop.orders (id int PRIMARY KEY, status text NOT NULL, amount numeric);
CREATE TABLE shop.customers (id text PRIMARY KEY, name text);
SELECT pghistory.track('shop.orders');
SELECT pghistory.track('shop.customers', context => 'json');

SET pghistory.context_id = '00000000-0000-0000-0000-00000000000a';
SET pghistory.context_metadata = '{"user": "alice", "url": "/checkout"}';
INSERT INTO shop.customers VALUES ('c1', 'Ann');
INSERT INTO shop.orders VALUES (1, 'new', 10), (2, 'new', 20);
SET pghistory.context_id = '00000000-0000-0000-0000-00000000000b';
SET pghistory.context_metadata = '{"user": "bob"}';
UPDATE shop.orders SET status = 'paid' WHERE id = 1;
UPDATE shop.customers SET name = 'Anne';
RESET pghistory.context_id;
RESET pghistory.context_metadata;
UPDATE shop.orders SET amount = 12, status = 'shipped' WHERE id = 1;
DELETE FROM shop.orders WHERE id = 2;

-- every event of every table, oldest first
SELECT pgh_slug, pgh_label, pgh_data, pgh_diff, pgh_context, pgh_obj_model, pgh_obj_id
  FROM pghistory.aggregate_events;

-- one object's history; filters keep the diffs of the whole history
SELECT pgh_id, pgh_label, pgh_diff, pgh_context_id FROM pghistory.events('shop.orders', obj_id => '1');
SELECT pgh_id, pgh_label, pgh_diff FROM pghistory.events('shop.orders', '1', labels => '{update}');
SELECT pgh_model, pgh_id, pgh_label
  FROM pghistory.events(context_id => '00000000-0000-0000-0000-00000000000b');

-- what a diff means when a tracker stores the row before the change:
-- each update shows the change it made; the latest one is known once the
-- next event is recorded; a delete changes no values
CREATE TABLE shop.notes (id int PRIMARY KEY, body text);
SELECT pghistory.track('shop.notes', trackers => ARRAY[
    pghistory.insert_event(), pghistory.update_event(snapshot => 'old'), pghistory.delete_event()]);
INSERT INTO shop.notes VALUES (1, 'draft');
UPDATE shop.notes SET body = 'final';
SELECT pgh_id, pgh_label, pgh_data, pgh_diff FROM pghistory.events('shop.notes');
UPDATE shop.notes SET body = 'published';
DELETE FROM shop.notes;
SELECT pgh_id, pgh_label, pgh_data, pgh_diff FROM pghistory.events('shop.notes');

-- revert: back to a snapshot, itself recorded
SELECT pghistory.revert('shop.orders_event', 1);
SELECT pghistory.revert('shop.orders_event', 1) AS nothing_to_do;
SELECT pghistory.revert('shop.orders_event', 5);
SELECT * FROM shop.orders ORDER BY id;
SELECT pgh_id, pgh_label, pgh_diff FROM pghistory.events('shop.orders') WHERE pgh_id > 5;

-- what revert and events refuse
SELECT pghistory.revert('shop.orders', 1);
SELECT pghistory.revert('shop.orders_event', 99);
ALTER TABLE shop.orders ADD CONSTRAINT big CHECK (amount > 15) NOT VALID;
SELECT pghistory.revert('shop.orders_event', 3);
SELECT * FROM pghistory.events(obj_id => '1');
SELECT * FROM pghistory.events('shop.orders', 'one');

-- a role reads only the history it was granted
CREATE ROLE regress_pgh_reader;
GRANT USAGE ON SCHEMA shop TO regress_pgh_reader;
GRANT SELECT ON shop.customers_event TO regress_pgh_reader;
SET ROLE regress_pgh_reader;
SELECT pgh_model, pgh_id, pgh_label, pgh_context FROM pghistory.aggregate_events;
SELECT pgh_id FROM pghistory.events('shop.orders');
RESET ROLE;

-- untrack keeps the history: read it through its event table
SELECT pghistory.untrack('shop.customers');
SELECT DISTINCT pgh_obj_model FROM pghistory.aggregate_events ORDER BY 1;
SELECT pgh_obj_model, pgh_id, pgh_label, pgh_diff FROM pghistory.events('shop.customers_event');

SELECT pghistory.untrack('shop.orders', drop_events => true);
SELECT pghistory.untrack('shop.notes', drop_events => true);
DROP SCHEMA shop CASCADE;
DROP ROLE regress_pgh_reader;
DROP EXTENSION pghistory;
