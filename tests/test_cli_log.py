"""``pghistory log``, ``show`` and ``context`` through their entry point, against real servers.

The history is tests/cli_history.py's: fixed times and context ids, so the
output is compared exactly.
"""

from __future__ import annotations

import json
import os
import pty
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cli_history import ALICE, BOB, make_history
from sqlhelpers import rows
from pghistory.cli import main

LOG = '''\
event public.orders_event:5 (delete)
Object:  public.orders 2
Date:    2026-11-01 10:05:00+00:00
Context: 00000000-0000-4000-8000-00000000000a
    url: /orders/2/cancel
    user: alice

  - amount       5
  - customer_id  1
  - id           2
  - status       "new"

event public.orders_event:4 (update)
Object:  public.orders 1
Date:    2026-11-01 10:04:00+00:00

    amount  10 → 12.5

event public.customers_event:2 (update)
Object:  public.customers 1
Date:    2026-11-01 10:03:30+00:00
Context: 00000000-0000-4000-8000-00000000000b
    reason: payment <b>received</b>
    user: bob

    name  "Alice <script>alert(1)</script>" → "Alice \\"A.\\" O'Hara"

event public.orders_event:3 (update)
Object:  public.orders 1
Date:    2026-11-01 10:03:00+00:00
Context: 00000000-0000-4000-8000-00000000000b
    reason: payment <b>received</b>
    user: bob

    status  "new" → "paid"

event public.orders_event:2 (insert)
Object:  public.orders 2
Date:    2026-11-01 10:02:00+00:00
Context: 00000000-0000-4000-8000-00000000000a
    url: /orders/2/cancel
    user: alice

  + amount       5
  + customer_id  1
  + id           2
  + status       "new"

event public.orders_event:1 (insert)
Object:  public.orders 1
Date:    2026-11-01 10:01:00+00:00
Context: 00000000-0000-4000-8000-00000000000a
    url: /orders/2/cancel
    user: alice

  + amount       10
  + customer_id  1
  + id           1
  + status       "new"

event public.customers_event:1 (insert)
Object:  public.customers 1
Date:    2026-11-01 10:00:30+00:00
Context: 00000000-0000-4000-8000-00000000000a
    url: /checkout?a=1&b="2"
    user: alice

  + id    1
  + name  "Alice <script>alert(1)</script>"
'''


@pytest.fixture
def history(conn, dsn, monkeypatch):
    make_history(conn)
    monkeypatch.setenv("PGTZ", "UTC")
    monkeypatch.delenv("DATABASE_URL", raising=False)
    return dsn


def run(capsys, *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def entries(text: str) -> list[str]:
    return [block.splitlines()[0] for block in text.split("\n\n") if block.startswith("event ")]


def test_log_prints_every_event_newest_first_with_its_diff(history, capsys):
    assert run(capsys, "log", "--dsn", history) == (0, LOG, "")


def test_log_reads_the_dsn_from_database_url(history, capsys, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", history)
    assert run(capsys, "log") == (0, LOG, "")


def test_log_json_lines_have_the_columns_of_aggregate_events(history, conn, capsys):
    xact = dict(rows(conn, "SELECT pgh_id, pgh_xact::text::bigint FROM orders_event"))
    status, out, err = run(capsys, "log", "--format", "json", "-n", "2", "--dsn", history)
    assert (status, err) == (0, "")
    assert [json.loads(line) for line in out.splitlines()] == [
        {"pgh_slug": "public.orders_event:5", "pgh_model": "public.orders_event", "pgh_id": 5,
         "pgh_created_at": "2026-11-01T10:05:00+00:00", "pgh_label": "delete",
         "pgh_data": {"id": 2, "amount": 5, "status": "new", "customer_id": 1}, "pgh_diff": {},
         "pgh_context_id": ALICE, "pgh_context": {"url": "/orders/2/cancel", "user": "alice"},
         "pgh_obj_model": "public.orders", "pgh_obj_id": "2", "pgh_xact": xact[5]},
        {"pgh_slug": "public.orders_event:4", "pgh_model": "public.orders_event", "pgh_id": 4,
         "pgh_created_at": "2026-11-01T10:04:00+00:00", "pgh_label": "update",
         "pgh_data": {"id": 1, "amount": 12.5, "status": "paid", "customer_id": 1}, "pgh_diff": {"amount": [10, 12.5]},
         "pgh_context_id": None, "pgh_context": None, "pgh_obj_model": "public.orders", "pgh_obj_id": "1",
         "pgh_xact": xact[4]},
    ]
    assert list(json.loads(out.splitlines()[0])) == [
        "pgh_slug", "pgh_model", "pgh_id", "pgh_created_at", "pgh_label", "pgh_data", "pgh_diff",
        "pgh_context_id", "pgh_context", "pgh_obj_model", "pgh_obj_id", "pgh_xact"]


@pytest.mark.parametrize("args, slugs", [
    (["orders"], ["orders_event:5", "orders_event:4", "orders_event:3", "orders_event:2", "orders_event:1"]),
    (["customers_event"], ["customers_event:2", "customers_event:1"]),
    (["orders", "1"], ["orders_event:4", "orders_event:3", "orders_event:1"]),
    (["-n", "3"], ["orders_event:5", "orders_event:4", "customers_event:2"]),
    (["--label", "insert"], ["orders_event:2", "orders_event:1", "customers_event:1"]),
    (["--label", "insert", "--label", "delete"], ["orders_event:5", "orders_event:2", "orders_event:1", "customers_event:1"]),
    (["--since", "2026-11-01 10:03:00+00", "--until", "2026-11-01 10:05:00+00"],
     ["orders_event:4", "customers_event:2", "orders_event:3"]),
    (["--context", "user=bob"], ["customers_event:2", "orders_event:3"]),
    (["--context", "user=alice", "--context", "url=/checkout?a=1&b=\"2\""], ["customers_event:1"]),
    (["--context-id", BOB], ["customers_event:2", "orders_event:3"]),
    (["--changed", "status"], ["orders_event:3"]),
    (["--changed", "name", "--changed", "amount"], ["orders_event:4", "customers_event:2"]),
    (["orders", "--context", "user=alice", "--label", "insert"], ["orders_event:2", "orders_event:1"]),
    (["--since", "2 hours ago"], []),
    (["--until", "yesterday"], ["orders_event:5", "orders_event:4", "customers_event:2", "orders_event:3",
                                "orders_event:2", "orders_event:1", "customers_event:1"]),
])
def test_log_filters(history, capsys, args, slugs):
    status, out, err = run(capsys, "log", *args, "--dsn", history)
    assert (status, err) == (0, "")
    assert entries(out) == [f"event public.{slug} ({label})" for slug, label in
                            ((s, _label(s)) for s in slugs)]


def test_log_shows_one_transaction_across_tables_newest_first_as_written(conn, dsn, capsys, monkeypatch):
    monkeypatch.delenv("DATABASE_URL", raising=False)
    conn.execute("CREATE TABLE alpha (id int PRIMARY KEY, v text); CREATE TABLE zeta (id int PRIMARY KEY)")
    conn.execute("SELECT pghistory.track('alpha'), pghistory.track('zeta')")
    with conn.transaction():  # one pgh_created_at for all three
        conn.execute("INSERT INTO alpha VALUES (1, 'a')")
        conn.execute("INSERT INTO zeta VALUES (1)")
        conn.execute("UPDATE alpha SET v = 'b'")
    status, out, err = run(capsys, "log", "--dsn", dsn)
    assert (status, err) == (0, "")
    assert entries(out) == ["event public.alpha_event:3 (update)", "event public.zeta_event:2 (insert)",
                            "event public.alpha_event:1 (insert)"]


def _label(slug: str) -> str:
    return {"orders_event:5": "delete", "orders_event:2": "insert", "orders_event:1": "insert",
            "customers_event:1": "insert"}.get(slug, "update")


def test_show_prints_one_event_with_its_snapshot(history, capsys):
    assert run(capsys, "show", "public.orders_event:3", "--dsn", history) == (0, '''\
event public.orders_event:3 (update)
Object:  public.orders 1
Date:    2026-11-01 10:03:00+00:00
Context: 00000000-0000-4000-8000-00000000000b
    reason: payment <b>received</b>
    user: bob

    status  "new" → "paid"

Snapshot:
    amount = 10
    customer_id = 1
    id = 1
    status = "paid"
''', "")


def test_context_prints_what_one_context_did_oldest_first(history, capsys):
    status, out, err = run(capsys, "context", ALICE, "--dsn", history)
    assert (status, err) == (0, "")
    assert entries(out) == ["event public.customers_event:1 (insert)", "event public.orders_event:1 (insert)",
                            "event public.orders_event:2 (insert)", "event public.orders_event:5 (delete)"]


def test_colour_only_when_asked_or_on_a_terminal(history, capsys):
    status, out, _ = run(capsys, "log", "orders", "1", "-n", "1", "--color", "always", "--dsn", history)
    assert status == 0
    assert out.splitlines()[0] == "\033[33mevent public.orders_event:4\033[m (update)"
    assert "    amount  \033[31m10\033[m → \033[32m12.5\033[m" in out.splitlines()


@pytest.mark.parametrize("args, message", [
    (["log", "nope"], "pghistory: error: no table nope (name a tracked table; SELECT * FROM pghistory.tracking lists them)"),
    (["log", "pg_class"], "pghistory: error: pg_class is not tracked (track it with SELECT pghistory.track(...), or name a tracked table)"),
    (["log", "orders", "x"], "pghistory: error: 'x' is not a key of orders: invalid input syntax for type integer: \"x\" "
                             "(OBJ_ID is the value of the row's primary key)"),
    (["log", "--since", "blah"], "pghistory: error: cannot read --since 'blah' as a time (give a date (2026-11-01), a timestamp "
                                 "(2026-11-01 12:00+00) or a relative time (2 hours ago, yesterday))"),
    (["log", "--context", "user"], "pghistory: error: --context 'user' is not KEY=VALUE (for example --context user=alice)"),
    (["log", "--context-id", "x"], "pghistory: error: --context-id 'x' is not a uuid (give the id of a context, as pghistory log prints it)"),
    (["show", "orders"], "pghistory: error: 'orders' is not an event's slug (a slug is <event table>:<pgh_id>, e.g. public.orders_event:3)"),
    (["show", "public.orders_event:99"], "pghistory: error: no event public.orders_event:99 (pghistory log lists the events and their slugs)"),
    (["context", "00000000-0000-4000-8000-000000000000"],
     "pghistory: error: no events of context 00000000-0000-4000-8000-000000000000 that you may read "
     "(check the id; events of tables you cannot SELECT from are not shown)"),
])
def test_user_mistakes_are_one_line_and_exit_1(history, capsys, args, message):
    assert run(capsys, *args, "--dsn", history) == (1, "", message + "\n")


def test_no_privilege_is_one_line_saying_what_to_grant(history, capsys, make_role, pg, db, conn):
    role = make_role("pgh_reader")
    conn.execute(f"GRANT SELECT ON orders_event TO {role}")
    dsn = pg.dsn(db, user=role)
    assert run(capsys, "log", "customers", "--dsn", dsn) == (1, "", (
        f"pghistory: error: permission denied for the history in public.customers_event "
        f"(reading history needs SELECT on its event table: GRANT SELECT ON public.customers_event TO {role})\n"))
    status, out, err = run(capsys, "log", "--dsn", dsn)  # the history this role may read; fk metadata hidden
    assert (status, err) == (0, "")
    assert entries(out) == [f"event public.orders_event:{i} ({_label(f'orders_event:{i}')})" for i in (5, 4, 3, 2, 1)]
    assert "user: alice" not in out and f"Context: {ALICE}" in out


def test_cannot_connect_is_one_line(capsys, monkeypatch):
    monkeypatch.delenv("DATABASE_URL", raising=False)
    status, out, err = run(capsys, "log", "--dsn", "host=/nonexistent dbname=x connect_timeout=2")
    assert (status, out) == (1, "")
    assert err == ('pghistory: error: cannot connect to the database: connection is bad: connection to server on socket '
                   '"/nonexistent/.s.PGSQL.5432" failed: No such file or directory (give the database with --dsn, '
                   'DATABASE_URL or the PG* environment variables)\n')


def console_script() -> str:
    found = shutil.which("pghistory", path=os.path.dirname(sys.executable))
    if found is None:
        pytest.skip("the pghistory console script is not installed (tests/run does `pip install -e .`)")
    return found


def test_console_script_piped_prints_plain_text_without_a_pager(history):
    result = subprocess.run([console_script(), "log", "--dsn", history], capture_output=True, text=True, timeout=60,
                            env={**os.environ, "PAGER": "false", "PGTZ": "UTC"})
    assert (result.returncode, result.stdout, result.stderr) == (0, LOG, "")


def test_on_a_terminal_the_log_goes_through_the_pager_in_colour(history):
    main_fd, child_fd = pty.openpty()
    env = {**os.environ, "PAGER": "sed -e s/^/paged:/", "PGTZ": "UTC", "LESS": ""}
    process = subprocess.Popen([console_script(), "log", "orders", "1", "-n", "1", "--dsn", history],
                               stdin=child_fd, stdout=child_fd, stderr=child_fd, env=env)
    os.close(child_fd)
    output = b""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ready, _, _ = select.select([main_fd], [], [], 1)
        if ready:
            try:
                chunk = os.read(main_fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            output += chunk
        elif process.poll() is not None:
            break
    process.wait(timeout=60)
    os.close(main_fd)
    lines = output.decode().replace("\r\n", "\n").splitlines()
    assert process.returncode == 0
    assert lines[:3] == ["paged:\033[33mevent public.orders_event:4\033[m (update)",
                         "paged:Object:  public.orders 1", "paged:Date:    2026-11-01 10:04:00+00:00"]


def test_blame_names_the_event_that_last_changed_each_column(history, capsys):
    assert run(capsys, "blame", "orders", "1", "--dsn", history) == (0, '''\
column       value   pgh_id  date                       label   context
id           1       1       2026-11-01 10:01:00+00:00  insert  url=/orders/2/cancel user=alice
status       "paid"  3       2026-11-01 10:03:00+00:00  update  reason=payment <b>received</b> user=bob
amount       12.5    4       2026-11-01 10:04:00+00:00  update
customer_id  1       1       2026-11-01 10:01:00+00:00  insert  url=/orders/2/cancel user=alice
''', "")


def test_as_of_prints_the_table_as_it_was(history, capsys):
    assert run(capsys, "as-of", "orders", "2026-11-01 10:03:30+00", "--dsn", history) == (0, '''\
id  status  amount  customer_id
1   "paid"  10      1
2   "new"   5       1
''', "")
    status, out, err = run(capsys, "as-of", "orders", "2026-11-01 10:06+00", "--format", "json", "--dsn", history)
    assert (status, [json.loads(line) for line in out.splitlines()], err) == (
        0, [{"id": 1, "amount": 12.5, "status": "paid", "customer_id": 1}], "")
    assert run(capsys, "as-of", "nope", "yesterday", "--dsn", history) == (
        1, "", "pghistory: error: no table nope (name a tracked table; SELECT * FROM pghistory.tracking lists them)\n")


def test_readme_shows_this_output(history, capsys):
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    shown = readme.split("$ pghistory log -n 4\n", 1)[1].split("```", 1)[0]
    assert run(capsys, "log", "-n", "4", "--dsn", history) == (0, shown, "")
