"""The harness itself: servers per major, a database per test, roles, connections."""

from __future__ import annotations

import os
import subprocess

import psycopg
import pytest

import harness


def test_server_is_the_requested_major(pg):
    with pg.connect() as c:
        version_num = c.execute("SHOW server_version_num").fetchone()[0]
        fsync = c.execute("SHOW fsync").fetchone()[0]
        user = c.execute("SELECT current_user").fetchone()[0]
    assert int(version_num) // 10000 == pg.major
    assert fsync == "off"
    assert user == pg.user


def test_server_runs_unprivileged(pg):
    with pg.connect() as c:
        # the data directory belongs to the server's OS user, never root
        datadir = c.execute("SHOW data_directory").fetchone()[0]
    owner = os.stat(datadir).st_uid
    assert owner != 0
    if os.geteuid() != 0:
        assert owner == os.geteuid()


def test_db_has_the_extension(pg, conn, db, dsn):
    assert conn.info.dbname == db
    assert f"dbname={db}" in dsn
    version = conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'pghistory'").fetchone()
    assert version == ("0.2.0",)


def test_each_test_gets_its_own_db(conn):
    # nothing created here survives into another test's database
    conn.execute("CREATE TABLE harness_probe (id int PRIMARY KEY)")


def test_each_test_gets_its_own_db_again(conn):
    conn.execute("CREATE TABLE harness_probe (id int PRIMARY KEY)")


def test_roles_and_extra_connections(pg, db, connect, make_role):
    role = make_role()
    other = connect(user=role)
    assert other.execute("SELECT current_user").fetchone() == (role,)
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        other.execute("CREATE ROLE not_allowed")
    tx = connect(autocommit=False)
    tx.execute("SELECT 1")
    assert tx.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS
    tx.rollback()


def test_role_owning_objects_is_dropped(conn, connect, make_role):
    role = make_role(attributes="CREATEDB")
    conn.execute(f'GRANT CREATE ON SCHEMA public TO "{role}"')
    connect(user=role).execute("CREATE TABLE owned_by_role (id int)")


def test_empty_db_has_no_extension(pg, empty_db):
    with pg.connect(empty_db) as c:
        assert c.execute("SELECT count(*) FROM pg_extension WHERE extname = 'pghistory'").fetchone() == (0,)


def test_psql_of_the_build(pg):
    out = pg.psql("-Atc", "SELECT current_setting('server_version_num')::int / 10000", capture=True).stdout
    assert out.strip() == str(pg.major)
    version = subprocess.run([str(pg.bin("psql")), "--version"], capture_output=True, text=True).stdout
    assert f" {pg.major}." in version


def test_majors_from_env(monkeypatch):
    monkeypatch.setenv("PGH_MAJORS", "pg16, 14 16")
    assert harness.majors_from_env() == [16, 14]
    monkeypatch.delenv("PGH_MAJORS")
    assert harness.majors_from_env() == [14, 15, 16, 17, 18]
