"""`make demo`: track two tables on a throwaway server and print their history.

Starts its own server (PostgreSQL 15 if it is among $PGH_MAJORS, else the
first major there that can be had), installs this checkout's pghistory into
it, runs a short story through psql (so what you see is exactly what you would
type), prints the event tables and pghistory.aggregate_events, and removes
the server.  Run it with `make demo` or `./tests/run --demo`.
"""

from __future__ import annotations

import subprocess
import sys

import harness

DB = "pghistory_demo"

SETUP = """\
CREATE EXTENSION pghistory;

CREATE TABLE customers (
    id    serial PRIMARY KEY,
    name  text NOT NULL,
    email text NOT NULL
);
CREATE TABLE orders (
    id          serial PRIMARY KEY,
    customer_id int NOT NULL REFERENCES customers,
    status      text NOT NULL DEFAULT 'new',
    amount      numeric(10,2) NOT NULL
);

-- every insert, update, delete (and truncate) of these tables is now recorded
SELECT pghistory.track('customers');
SELECT pghistory.track('orders');
"""

STORY = """\
-- alice signs up on the web shop and orders twice: the context says who and where
BEGIN;
SELECT pghistory.set_context('{"user": "alice", "url": "/signup"}') AS context_id;
INSERT INTO customers (name, email) VALUES ('Alice', 'alice@example.com');
INSERT INTO orders (customer_id, amount) VALUES (1, 42.00), (1, 17.50);
COMMIT;

-- bob from the back office marks the first order paid
BEGIN;
SELECT pghistory.set_context('{"user": "bob", "reason": "payment received"}') AS context_id;
UPDATE orders SET status = 'paid' WHERE id = 1;
COMMIT;

-- alice cancels her second order and changes her e-mail address in one request
BEGIN;
SELECT pghistory.set_context('{"user": "alice", "url": "/orders/2/cancel"}') AS context_id;
DELETE FROM orders WHERE id = 2;
UPDATE customers SET email = 'alice@example.org' WHERE id = 1;
COMMIT;

-- a nightly job without any context: its events have no context
UPDATE orders SET amount = amount + 1.00 WHERE status = 'paid';

-- a rolled-back change leaves no history
BEGIN;
SELECT pghistory.set_context('{"user": "mallory"}') AS context_id;
DELETE FROM orders;
ROLLBACK;
"""

ORDER_EVENTS = """\
SELECT e.pgh_id, e.pgh_label, e.pgh_obj_id, e.id, e.customer_id, e.status, e.amount,
       c.metadata ->> 'user' AS context_user
  FROM public.orders_event e
  LEFT JOIN pghistory.context c ON c.id = e.pgh_context_id
 ORDER BY e.pgh_id;
"""

CUSTOMER_EVENTS = """\
SELECT e.pgh_id, e.pgh_label, e.pgh_obj_id, e.name, e.email, c.metadata AS context
  FROM public.customers_event e
  LEFT JOIN pghistory.context c ON c.id = e.pgh_context_id
 ORDER BY e.pgh_id;
"""

AGGREGATE = """\
SELECT pgh_obj_model, pgh_obj_id, pgh_label, pgh_diff, pgh_context
  FROM pghistory.aggregate_events
 ORDER BY pgh_created_at, pgh_id;
"""

ONE_OBJECT = """\
SELECT pgh_id, pgh_label, pgh_data, pgh_diff, pgh_context ->> 'user' AS context_user
  FROM pghistory.events('orders', obj_id => '1');
"""


def banner(text: str) -> None:
    print(f"\n=== {text} " + "=" * max(0, 70 - len(text)), flush=True)


def choose_build() -> harness.Build:
    majors = harness.majors_from_env()
    order = ([15] if 15 in majors else []) + [m for m in majors if m != 15]
    errors = []
    for major in order:
        try:
            return harness.prepare(major)
        except harness.BuildError as exc:
            errors.append(str(exc))
    raise SystemExit("demo: no PostgreSQL build could be prepared:\n" + "\n".join(errors))


def main() -> int:
    harness.stop_on_sigterm()
    build = choose_build()
    with harness.Server(build) as pg:
        banner(f"PostgreSQL {pg.major} on {pg.host}:{pg.port} ({build.home})")
        pg.psql("-q", "-c", f"CREATE DATABASE {DB}")
        try:
            banner("Set up: two tables, tracked")
            pg.psql("--echo-all", dbname=DB, input=SETUP)
            banner("The story: changes made under a context")
            pg.psql("--echo-all", dbname=DB, input=STORY)
            banner("History of orders (public.orders_event)")
            pg.psql("--echo-queries", dbname=DB, input=ORDER_EVENTS)
            banner("History of customers (public.customers_event)")
            pg.psql("--echo-queries", dbname=DB, input=CUSTOMER_EVENTS)
            has_view = pg.psql(
                "-Atc", "SELECT to_regclass('pghistory.aggregate_events') IS NOT NULL", dbname=DB, capture=True
            ).stdout.strip() == "t"
            if has_view:
                banner("Everything, across tables (pghistory.aggregate_events)")
                pg.psql("--echo-queries", dbname=DB, input=AGGREGATE)
                banner("One object's history (pghistory.events)")
                pg.psql("--echo-queries", dbname=DB, input=ONE_OBJECT)
            else:
                print("\n(pghistory.aggregate_events does not exist in this build yet)")
        except subprocess.CalledProcessError as exc:
            print(f"\ndemo: psql failed (exit {exc.returncode}); see the error above", file=sys.stderr)
            return 1
        finally:
            pg.psql("-q", "-c", f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)", check=False)
    banner("Done: the server and its data are gone")
    return 0


if __name__ == "__main__":
    sys.exit(main())
