"""A fixed history for the tests of ``pghistory log`` and the history browser: known times, known context ids."""

from __future__ import annotations

import psycopg

ALICE = "00000000-0000-4000-8000-00000000000a"
BOB = "00000000-0000-4000-8000-00000000000b"

HISTORY = f"""
CREATE TABLE customers (id int PRIMARY KEY, name text);
CREATE TABLE orders (id int PRIMARY KEY, status text, amount numeric, customer_id int);
SELECT pghistory.track('customers', context => 'json');
SELECT pghistory.track('orders');
BEGIN;
SET LOCAL pghistory.context_id = '{ALICE}';
SET LOCAL pghistory.context_metadata = '{{"user": "alice", "url": "/checkout?a=1&b=\\"2\\""}}';
INSERT INTO customers VALUES (1, 'Alice <script>alert(1)</script>');
INSERT INTO orders VALUES (1, 'new', 10, 1), (2, 'new', 5, 1);
COMMIT;
BEGIN;
SET LOCAL pghistory.context_id = '{BOB}';
SET LOCAL pghistory.context_metadata = '{{"user": "bob", "reason": "payment <b>received</b>"}}';
UPDATE orders SET status = 'paid' WHERE id = 1;
UPDATE customers SET name = 'Alice "A." O''Hara' WHERE id = 1;
COMMIT;
UPDATE orders SET amount = 12.50 WHERE id = 1;
BEGIN;
SET LOCAL pghistory.context_id = '{ALICE}';
SET LOCAL pghistory.context_metadata = '{{"user": "alice", "url": "/orders/2/cancel"}}';
DELETE FROM orders WHERE id = 2;
COMMIT;
BEGIN;
SET LOCAL pghistory.allow_history_changes = on;
-- one sequence numbers both tables' events (customers 1 and 5, orders 2-4, 6, 7): give each table
-- its own 1, 2, ... so that the slugs the tests show stay short and fixed
UPDATE orders_event SET pgh_id = pgh_id + 1000;
UPDATE orders_event AS e SET pgh_id = n.n
  FROM (SELECT pgh_id, row_number() OVER (ORDER BY pgh_id) AS n FROM orders_event) AS n WHERE n.pgh_id = e.pgh_id;
UPDATE customers_event SET pgh_id = pgh_id + 1000;
UPDATE customers_event AS e SET pgh_id = n.n
  FROM (SELECT pgh_id, row_number() OVER (ORDER BY pgh_id) AS n FROM customers_event) AS n WHERE n.pgh_id = e.pgh_id;
SELECT setval('pghistory.event_id_seq', (SELECT max(pgh_id) FROM orders_event));
UPDATE orders_event SET pgh_created_at = '2026-11-01 10:00:00+00'::timestamptz + pgh_id * interval '1 minute';
UPDATE customers_event SET pgh_created_at = '2026-11-01 10:00:30+00'::timestamptz + (pgh_id * 3 - 3) * interval '1 minute';
COMMIT;
"""


def make_history(conn: psycopg.Connection) -> None:
    """Two tracked tables (orders in fk mode, customers in json mode) with seven events at fixed times."""
    for statement in HISTORY.split(";\n"):
        if statement.strip():
            conn.execute(statement)
