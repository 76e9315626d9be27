-- pghistory: the core, as a DBA sees it in psql.
\set VERBOSITY terse
CREATE EXTENSION pghistory;

CREATE TABLE orders (id int PRIMARY KEY, status text NOT NULL, amount numeric);
SELECT pghistory.track('orders');
SELECT tracked_table, event_table, labels, fields, context, level, append_only FROM pghistory.tracking;
SELECT attname, format_type(atttypid, atttypmod) AS type, attnotnull
  FROM pg_attribute WHERE attrelid = 'orders_event'::regclass AND attnum > 0 ORDER BY attnum;

-- every write becomes an event; an update that changes nothing does not
INSERT INTO orders VALUES (1, 'new', 10), (2, 'new', 20);
UPDATE orders SET status = 'paid' WHERE id = 1;
UPDATE orders SET status = status;
DELETE FROM orders WHERE id = 2;
SELECT pgh_id, pgh_label, pgh_obj_id, id, status, amount FROM orders_event ORDER BY pgh_id;

-- a context says who and why; events point at it
BEGIN;
SELECT pghistory.set_context('{"user": "alice", "url": "/checkout"}') IS NOT NULL AS started;
SELECT pghistory.set_context('{"reason": "refund"}') = pghistory.current_context_id() AS same_context;
UPDATE orders SET amount = 5 WHERE id = 1;
COMMIT;
SELECT e.pgh_label, e.amount, c.metadata
  FROM orders_event AS e JOIN pghistory.context AS c ON c.id = e.pgh_context_id;
SELECT pghistory.current_context_id() IS NULL AS context_ended;

-- trackers choose what is recorded
CREATE TABLE accounts (id bigint PRIMARY KEY, owner text, balance int, note text);
SELECT pghistory.track('accounts',
    trackers => ARRAY[pghistory.insert_event(),
                      pghistory.update_event('balance_changed', changed => '{balance}'),
                      pghistory.update_event('overdrawn', condition => 'NEW.balance < 0 AND OLD.balance >= 0'),
                      pghistory.manual_event('audited')],
    exclude => '{note}', context => 'json', level => 'row');
INSERT INTO accounts VALUES (7, 'bob', 100, 'x');
UPDATE accounts SET note = 'y';
UPDATE accounts SET balance = -5;
SELECT pghistory.create_event('accounts', 7, 'audited');
SELECT pgh_id, pgh_label, pgh_obj_id, owner, balance FROM accounts_event ORDER BY pgh_id;

-- SET pghistory.enabled = off records nothing
SET pghistory.enabled = off;
UPDATE accounts SET balance = 1;
RESET pghistory.enabled;
SELECT count(*) AS events FROM accounts_event;

-- bad input: clear errors, nothing half-configured
SELECT pghistory.track('orders', fields => '{id,nope}');
SELECT pghistory.track('orders', level => 'rows');
SELECT pghistory.create_event('accounts', 7, 'checkout');
SELECT pghistory.set_context('[1, 2]');
CREATE VIEW order_view AS SELECT * FROM orders;
SELECT pghistory.track('order_view');
UPDATE orders_event SET status = 'forged';

-- untrack keeps the history
SELECT pghistory.untrack('orders');
SELECT tracked_table FROM pghistory.tracking;
SELECT count(*) AS kept FROM orders_event;
