"""ALTER EXTENSION pghistory UPDATE: from every earlier release to an install identical to a fresh one.

Earlier releases are kept, frozen, as tests/upgrade/pghistory--<version>.sql (see the README
there for the release procedure); the upgrade scripts are extension/pghistory--<from>--<to>.sql.
Each frozen release is installed, given some history, updated, and compared with a fresh install
of the current version by extension_catalog(). Until the first release has a successor there is
no frozen release: a pretend one (the current script under version 0.0.0, with an empty update
script) keeps the machinery tested.
"""

from __future__ import annotations

import pprint
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from sqlhelpers import rows, value

ROOT = Path(__file__).resolve().parents[1]
FROZEN = ROOT / "tests" / "upgrade"
VERSION_RE = r"[0-9]+(?:\.[0-9]+)*"


def default_version() -> str:
    control = (ROOT / "pghistory.control").read_text()
    match = re.search(r"^default_version\s*=\s*'([^']+)'", control, re.M)
    assert match, "pghistory.control has no default_version"
    return match.group(1)


def version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


def frozen_releases() -> list[str]:
    """The versions of the frozen release scripts in tests/upgrade, oldest first."""
    found = [m.group(1) for p in FROZEN.glob("pghistory--*.sql")
             if (m := re.fullmatch(rf"pghistory--({VERSION_RE})\.sql", p.name))]
    return sorted(found, key=version_key)


def update_scripts() -> list[tuple[str, str]]:
    """(from, to) of every upgrade script in extension/."""
    found = []
    for path in (ROOT / "extension").glob("pghistory--*--*.sql"):
        match = re.fullmatch(rf"pghistory--({VERSION_RE})--({VERSION_RE})\.sql", path.name)
        assert match, f"{path.name}: upgrade scripts are named pghistory--<from>--<to>.sql"
        found.append((match.group(1), match.group(2)))
    return sorted(found, key=lambda pair: version_key(pair[0]))


# -- the catalog of the extension -------------------------------------------------------------

MEMBERS = """
    SELECT d.classid, d.objid FROM pg_depend AS d
     WHERE d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e'
       AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'pghistory')"""


# The plain script's objects are not members of an extension: they are what it puts into schema
# pghistory (but the trigger functions generated for tracked tables) and its event triggers.
PLAIN_MEMBERS = """
    SELECT 'pg_proc'::regclass AS classid, p.oid AS objid FROM pg_proc AS p
     WHERE p.pronamespace = 'pghistory'::regnamespace
       AND coalesce(obj_description(p.oid, 'pg_proc'), '') NOT LIKE 'pghistory: generated for %'
    UNION ALL
    SELECT 'pg_class'::regclass, c.oid FROM pg_class AS c
     WHERE c.relnamespace = 'pghistory'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm', 'S')
    UNION ALL
    SELECT 'pg_type'::regclass, t.oid FROM pg_type AS t
     WHERE t.typnamespace = 'pghistory'::regnamespace AND t.typtype IN ('c', 'e', 'd')
       AND (t.typtype <> 'c' OR (SELECT c.relkind FROM pg_class AS c WHERE c.oid = t.typrelid) = 'c')
    UNION ALL
    SELECT 'pg_event_trigger'::regclass, e.oid FROM pg_event_trigger AS e WHERE e.evtname LIKE 'pghistory%'"""


def extension_catalog(conn: psycopg.Connection[Any], members: str = MEMBERS) -> dict[str, list[tuple[Any, ...]]]:
    """Everything the extension consists of, by name (never by oid), so that two databases can
    be compared: an upgraded install must equal a fresh one key for key. `members` selects the
    objects (classid, objid): the extension's by default, `PLAIN_MEMBERS` for the plain script."""
    q = {
        "extension": """
            SELECT e.extversion, e.extrelocatable, e.extnamespace::regnamespace::text,
                   ARRAY(SELECT c::regclass::text || ' ' || coalesce(w, '')
                           FROM unnest(e.extconfig, e.extcondition) AS x(c, w) ORDER BY 1)
              FROM pg_extension AS e WHERE e.extname = 'pghistory'""",
        "members": f"""
            SELECT pg_describe_object(d.classid, d.objid, 0) FROM ({members}) AS d ORDER BY 1""",
        "schema": """
            SELECT n.nspname::text, pg_get_userbyid(n.nspowner)::text, n.nspacl::text,
                   obj_description(n.oid, 'pg_namespace')
              FROM pg_namespace AS n WHERE n.nspname = 'pghistory'""",
        "functions": f"""
            SELECT p.oid::regprocedure::text, pg_get_functiondef(p.oid), p.proacl::text,
                   pg_get_userbyid(p.proowner)::text, obj_description(p.oid, 'pg_proc')
              FROM pg_proc AS p JOIN ({members}) AS d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid
             ORDER BY 1""",
        "relations": f"""
            SELECT c.oid::regclass::text, c.relkind::text, c.relacl::text, c.reloptions, c.relrowsecurity,
                   c.relforcerowsecurity, c.relpersistence::text, pg_get_userbyid(c.relowner)::text,
                   obj_description(c.oid, 'pg_class'),
                   CASE WHEN c.relkind = 'v' THEN pg_get_viewdef(c.oid) END
              FROM pg_class AS c JOIN ({members}) AS d ON d.classid = 'pg_class'::regclass AND d.objid = c.oid
             ORDER BY 1""",
        "columns": f"""
            SELECT c.oid::regclass::text, a.attnum, a.attname::text, format_type(a.atttypid, a.atttypmod),
                   a.attnotnull, pg_get_expr(ad.adbin, ad.adrelid), a.attidentity::text, a.attgenerated::text,
                   a.attcollation::regcollation::text, a.attacl::text,
                   col_description(c.oid, a.attnum)
              FROM pg_class AS c JOIN ({members}) AS d ON d.classid = 'pg_class'::regclass AND d.objid = c.oid
              JOIN pg_attribute AS a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
              LEFT JOIN pg_attrdef AS ad ON ad.adrelid = c.oid AND ad.adnum = a.attnum
             ORDER BY 1, 2""",
        "constraints": f"""
            SELECT co.conrelid::regclass::text, co.conname::text, pg_get_constraintdef(co.oid)
              FROM pg_constraint AS co
              JOIN ({members}) AS d ON d.classid = 'pg_class'::regclass AND d.objid = co.conrelid
             ORDER BY 1, 2""",
        "indexes": f"""
            SELECT i.indrelid::regclass::text, pg_get_indexdef(i.indexrelid)
              FROM pg_index AS i
              JOIN ({members}) AS d ON d.classid = 'pg_class'::regclass AND d.objid = i.indrelid
             ORDER BY 1, 2""",
        "policies": f"""
            SELECT p.polrelid::regclass::text, p.polname::text, p.polcmd::text, p.polpermissive,
                   ARRAY(SELECT CASE WHEN r = 0 THEN 'public' ELSE pg_get_userbyid(r)::text END
                           FROM unnest(p.polroles) AS r ORDER BY 1),
                   pg_get_expr(p.polqual, p.polrelid), pg_get_expr(p.polwithcheck, p.polrelid)
              FROM pg_policy AS p
              JOIN ({members}) AS d ON d.classid = 'pg_class'::regclass AND d.objid = p.polrelid
             ORDER BY 1, 2""",
        "triggers": f"""
            SELECT t.tgrelid::regclass::text, t.tgname::text, pg_get_triggerdef(t.oid), t.tgenabled::text
              FROM pg_trigger AS t
              JOIN ({members}) AS d ON d.classid = 'pg_class'::regclass AND d.objid = t.tgrelid
             WHERE NOT t.tgisinternal
             ORDER BY 1, 2""",
        "types": f"""
            SELECT t.oid::regtype::text, t.typtype::text, t.typacl::text, obj_description(t.oid, 'pg_type'),
                   ARRAY(SELECT a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
                           FROM pg_attribute AS a
                          WHERE a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped
                          ORDER BY a.attnum),
                   ARRAY(SELECT e.enumlabel::text FROM pg_enum AS e WHERE e.enumtypid = t.oid
                          ORDER BY e.enumsortorder)
              FROM pg_type AS t JOIN ({members}) AS d ON d.classid = 'pg_type'::regclass AND d.objid = t.oid
             ORDER BY 1""",
        "event_triggers": f"""
            SELECT e.evtname::text, e.evtevent::text, e.evttags, e.evtfoid::regprocedure::text,
                   e.evtenabled::text
              FROM pg_event_trigger AS e
              JOIN ({members}) AS d ON d.classid = 'pg_event_trigger'::regclass AND d.objid = e.oid
             ORDER BY 1""",
    }
    return {key: rows(conn, query) for key, query in q.items()}


def catalog_differences(a: dict[str, list[tuple[Any, ...]]], b: dict[str, list[tuple[Any, ...]]]) -> dict[str, Any]:
    """Per key, what only a has and what only b has (empty when the catalogs are equal)."""
    differences = {}
    for key in sorted(set(a) | set(b)):
        only_a = [r for r in a.get(key, []) if r not in b.get(key, [])]
        only_b = [r for r in b.get(key, []) if r not in a.get(key, [])]
        if only_a or only_b or a.get(key) != b.get(key):
            differences[key] = {"only in the first": only_a, "only in the second": only_b}
    return differences


HISTORY = """
CREATE TABLE orders (id int PRIMARY KEY, status text);
SELECT pghistory.track('orders');
CREATE TABLE notes (id int PRIMARY KEY, body text);
SELECT pghistory.track('notes', level => 'row', context => 'json');
BEGIN;
SELECT pghistory.set_context('{"user": "alice"}');
INSERT INTO orders VALUES (1, 'new'), (2, 'new');
INSERT INTO notes VALUES (1, 'hello');
COMMIT;
UPDATE orders SET status = 'paid' WHERE id = 1;
"""


# Columns an upgrade adds to the extension's tables, left out of the comparison of their rows:
# what they hold for rows made before the upgrade is the migration's to decide.
ADDED_COLUMNS = "'{created_by,trigger_functions}'::text[]"
# ... and to the event tables: pgh_xact (NULL in events made before the upgrade, asserted below)
ADDED_EVENT_COLUMNS = "'{pgh_xact}'::text[]"


def history(conn: psycopg.Connection[Any]) -> list[tuple[Any, ...]]:
    return [
        *rows(conn, f"SELECT (to_jsonb(e) - {ADDED_EVENT_COLUMNS})::text FROM orders_event AS e ORDER BY pgh_id"),
        *rows(conn, f"SELECT (to_jsonb(e) - {ADDED_EVENT_COLUMNS})::text FROM notes_event AS e ORDER BY pgh_id"),
        *rows(conn, f"SELECT (to_jsonb(c) - {ADDED_COLUMNS})::text FROM pghistory.context AS c ORDER BY id"),
        *rows(conn, f"SELECT (to_jsonb(t) - {ADDED_COLUMNS})::text FROM pghistory.tracked AS t ORDER BY tracked_table::text"),
    ]


@pytest.fixture
def fresh_catalog(pg) -> dict[str, list[tuple[Any, ...]]]:
    """The catalog of a fresh install of the current version, made now."""
    name = f"fresh_{uuid.uuid4().hex[:12]}"
    with pg.connect() as c:
        c.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        with pg.connect(name) as c:
            c.execute("CREATE EXTENSION pghistory")
            return extension_catalog(c)
    finally:
        with pg.connect() as c:
            c.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


# -- no earlier release yet: UPDATE is a no-op -------------------------------------------------


def test_alter_extension_update_is_a_clean_no_op(pg, db, conn):
    pg.psql("-q", dbname=db, input=HISTORY, capture=True)
    catalog, before = extension_catalog(conn), history(conn)
    notices: list[str] = []
    conn.add_notice_handler(lambda d: notices.append(d.message_primary or ""))
    conn.execute("ALTER EXTENSION pghistory UPDATE")
    assert notices == [f'version "{default_version()}" of extension "pghistory" is already installed']
    assert value(conn, "SELECT extversion FROM pg_extension WHERE extname = 'pghistory'") == default_version()
    assert catalog_differences(extension_catalog(conn), catalog) == {}
    assert history(conn) == before
    conn.execute("UPDATE orders SET status = 'shipped' WHERE id = 2")
    assert value(conn, "SELECT count(*) FROM orders_event") == 4


def test_catalog_comparison_sees_what_an_upgrade_could_get_wrong(pg, empty_db, fresh_catalog):
    with pg.connect(empty_db) as other:
        other.execute("CREATE EXTENSION pghistory")
        fresh = extension_catalog(other)
        assert catalog_differences(fresh, fresh_catalog) == {}  # two fresh installs agree
        for key in ("extension", "members", "schema", "functions", "relations", "columns", "constraints",
                    "indexes", "policies", "types", "event_triggers"):
            assert fresh[key], key  # each part is really looked at
        other.execute("""
            CREATE OR REPLACE FUNCTION pghistory.clear_context() RETURNS void
            LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp
            AS $$ SELECT set_config('pghistory.context_id', '', true) $$""")
        other.execute("ALTER TABLE pghistory.context ADD COLUMN extra int")
        other.execute("COMMENT ON VIEW pghistory.tracking IS 'changed'")
        other.execute("GRANT SELECT ON pghistory.context TO PUBLIC")
        other.execute("ALTER EVENT TRIGGER pghistory_on_drop DISABLE")
        # (PostgreSQL 17 and later also make the tables' row types members: "types" differs there too)
        assert sorted(set(catalog_differences(extension_catalog(other), fresh)) - {"types"}) == [
            "columns", "event_triggers", "functions", "relations"]


# -- upgrades from earlier releases ------------------------------------------------------------


class Release:
    """An earlier release made installable for one test: its frozen install script (and, for the
    pretend release, its update script) copied into the server's extension directory."""

    def __init__(self, pg: Any, version: str) -> None:
        self.version = version
        self.directory: Path = pg.build.extension_dir
        self.copied: list[Path] = []
        current = default_version()
        if version == PRETEND:
            # the current version's script under an earlier version number, with an empty update
            self.write(f"pghistory--{version}.sql", (self.directory / f"pghistory--{current}.sql").read_text())
            self.write(f"pghistory--{version}--{current}.sql",
                       f"\\echo Use \"ALTER EXTENSION pghistory UPDATE TO '{current}'\" to load this file. \\quit\n")
        else:
            self.write(f"pghistory--{version}.sql", (FROZEN / f"pghistory--{version}.sql").read_text())

    def write(self, name: str, text: str) -> None:
        path = self.directory / name
        path.write_text(text)
        path.chmod(0o644)
        self.copied.append(path)

    def remove(self) -> None:
        for path in self.copied:
            path.unlink(missing_ok=True)


PRETEND = "0.0.0"


@pytest.fixture(params=frozen_releases() + [PRETEND])
def release(request: pytest.FixtureRequest, pg) -> Iterator[str]:
    made = Release(pg, request.param)
    try:
        yield made.version
    finally:
        made.remove()


def test_upgrade_from_a_release_equals_a_fresh_install(pg, empty_db, release, fresh_catalog):
    with pg.connect(empty_db) as c:
        c.execute(f"CREATE EXTENSION pghistory VERSION '{release}'")
        pg.psql("-q", dbname=empty_db, input=HISTORY, capture=True)
        before = history(c)
        c.execute("ALTER EXTENSION pghistory UPDATE")
        assert value(c, "SELECT extversion FROM pg_extension WHERE extname = 'pghistory'") == default_version()
        assert catalog_differences(extension_catalog(c), fresh_catalog) == {}
        assert history(c) == before
        # tracking goes on, schema changes are followed
        c.execute("ALTER TABLE orders ADD COLUMN note text")
        c.execute("UPDATE orders SET note = 'x' WHERE id = 2")
        assert rows(c, "SELECT pgh_label, id, status, note FROM orders_event ORDER BY pgh_id DESC LIMIT 1") == [
            ("update", 2, "new", "x")]
        # events recorded before the upgrade have no transaction; those after have theirs
        if release != PRETEND:
            assert value(c, "SELECT count(*) FROM orders_event WHERE pgh_xact IS NOT NULL") == 1
        assert value(c, "SELECT pgh_xact IS NOT NULL FROM orders_event ORDER BY pgh_id DESC LIMIT 1") is True


def test_upgrade_scripts_lead_from_every_release_to_the_current_version(pg, conn):
    current = default_version()
    scripts = update_scripts()
    for source, target in scripts:
        assert version_key(source) < version_key(target) <= version_key(current), (source, target)
        first = (ROOT / "extension" / f"pghistory--{source}--{target}.sql").read_text().splitlines()[0]
        assert first == f"\\echo Use \"ALTER EXTENSION pghistory UPDATE TO '{target}'\" to load this file. \\quit"
    for release in frozen_releases():
        assert version_key(release) < version_key(current), f"tests/upgrade/pghistory--{release}.sql is not earlier"
        # the server finds the way (make install put the scripts in place)
        path = value(conn, """SELECT path FROM pg_extension_update_paths('pghistory')
                               WHERE source = %s AND target = %s""", release, current)
        assert path is not None, f"no chain of update scripts leads from {release} to {current}"
    assert (FROZEN / "README.md").exists()
    assert not (FROZEN / f"pghistory--{current}.sql").exists(), "the current version is built, not frozen"


# -- upgrades by pg_tle and by the plain script (managed services) ----------------------------

from test_install import VERSION, make_managed, tle  # noqa: E402,F401  (the pg_tle server fixture)


def plain_release(version: str) -> str:
    """A frozen release as a plain script would have installed it (the plain script is new in
    0.2.0): without the psql guard and the calls only an extension script may make, its version
    recorded as the plain script records it."""
    text = (FROZEN / f"pghistory--{version}.sql").read_text()
    text = re.sub(r"^\\echo .*$", "", text, flags=re.M)
    text = re.sub(r"^SELECT pg_catalog\.pg_extension_config_dump\(.*\);$", "", text, flags=re.M)
    return (f"CREATE SCHEMA pghistory;\n{text}\n"
            f"COMMENT ON SCHEMA pghistory IS 'pghistory {version} (plain script)';\n")


def upgraded_equals_fresh(tle, install_old, catalog) -> None:
    """In one managed database install the old release (`install_old(admin)`), write history,
    pgh.install() to upgrade; in another, pgh.install() fresh; compare."""
    import pghistory as pgh

    for m in make_managed(tle, with_pg_tle=True):
        fresh = f"{m.db}_fresh"  # the same admin's, so that owners and grants compare
        with tle.connect() as su:
            su.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(fresh), sql.Identifier(m.admin)))
        with tle.connect(fresh) as su:
            su.execute("CREATE EXTENSION pg_tle")
        with m.connect() as admin, m.connect(db=fresh) as admin2:
            install_old(admin)
            admin.execute(HISTORY)
            before = history(admin)
            with pytest.warns(pgh.NoEventTriggersWarning):
                assert pgh.install(admin) == VERSION
            with pytest.warns(pgh.NoEventTriggersWarning):
                assert pgh.install(admin2, method=catalog) == VERSION
            members = PLAIN_MEMBERS if catalog == "script" else MEMBERS
            differences = catalog_differences(extension_catalog(admin, members), extension_catalog(admin2, members))
            assert differences == {}, pprint.pformat(differences, width=150)
            assert history(admin) == before
            admin.execute("ALTER TABLE orders ADD COLUMN note text")  # no event triggers: refresh()
            admin.execute("SELECT pghistory.refresh('orders')")
            admin.execute("UPDATE orders SET note = 'x' WHERE id = 2")
            assert rows(admin, "SELECT pgh_label, id, status, note FROM orders_event ORDER BY pgh_id DESC LIMIT 1") == [
                ("update", 2, "new", "x")]


@pytest.mark.parametrize("release", frozen_releases())
def test_upgrade_through_pg_tle_equals_a_fresh_pg_tle_install(tle, release):
    def install_old(admin):
        admin.execute("SELECT pgtle.install_extension('pghistory', %s, 'pghistory', %s, '{plpgsql}', 'pghistory')",
                      [release, (FROZEN / f"pghistory--{release}.sql").read_text()])
        admin.execute("CREATE EXTENSION pghistory")
    upgraded_equals_fresh(tle, install_old, "pg_tle")


@pytest.mark.parametrize("release", frozen_releases())
def test_upgrade_of_the_plain_script_equals_a_fresh_plain_install(tle, release):
    def install_old(admin):
        admin.execute(plain_release(release))
    upgraded_equals_fresh(tle, install_old, "script")
