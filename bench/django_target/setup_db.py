"""Let django-pghistory build its own schema in one bench database.

Run by bench/run.py with the bench's own virtualenv (django-pghistory 3.9,
Django, psycopg), never the test suite's:

    python bench/django_target/setup_db.py --host H --port P --user U --dbname D --level row|statement

It configures a minimal Django project (contenttypes, auth, pgtrigger, pghistory and
the bench app ``benchapp``), writes the bench app's migrations with
``makemigrations`` into a temporary directory (so the level variant gets its
own), and runs ``migrate``: the tables ``item``, ``item_event`` and
``pghistory_context``, the function ``_pgh_attach_context()`` and the triggers
are all django-pghistory's own.  Prints the triggers it installed on ``item``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", required=True, type=int)
    parser.add_argument("--user", required=True)
    parser.add_argument("--dbname", required=True)
    parser.add_argument("--level", choices=("row", "statement"), default="row")
    args = parser.parse_args()

    os.environ["BENCH_DJANGO_LEVEL"] = args.level
    sys.path.insert(0, str(HERE))
    with tempfile.TemporaryDirectory(prefix="pgh-bench-migrations-") as tmp:
        package = Path(tmp) / f"bench_migrations_{args.level}"
        package.mkdir()
        (package / "__init__.py").write_text("")
        sys.path.insert(0, tmp)

        import django
        from django.conf import settings

        settings.configure(
            DEBUG=False,
            USE_TZ=True,
            SECRET_KEY="bench",
            DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
            INSTALLED_APPS=["django.contrib.contenttypes", "django.contrib.auth", "pgtrigger", "pghistory", "benchapp"],
            MIGRATION_MODULES={"benchapp": package.name},
            DATABASES={
                "default": {
                    "ENGINE": "django.db.backends.postgresql",
                    "HOST": args.host,
                    "PORT": args.port,
                    "USER": args.user,
                    "NAME": args.dbname,
                }
            },
        )
        django.setup()
        from django.core.management import call_command
        from django.db import connection

        call_command("makemigrations", "benchapp", verbosity=0)
        call_command("migrate", verbosity=0)
        with connection.cursor() as cur:
            cur.execute(
                "SELECT tgname FROM pg_trigger WHERE tgrelid = 'item'::regclass AND NOT tgisinternal ORDER BY 1"
            )
            triggers = [r[0] for r in cur.fetchall()]
    import pghistory

    print(f"django-pghistory {pghistory.__version__} ({args.level} level): triggers on item: {', '.join(triggers)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
