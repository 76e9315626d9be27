-- pghistory for pg_tle (RDS, Aurora, Supabase): registers pghistory's
-- install script and every update script with pg_tle, so that
--     CREATE EXTENSION pghistory;             -- pg_tle 1.5.0 and later
--     CREATE SCHEMA pghistory; CREATE EXTENSION pghistory SCHEMA pghistory;  -- before
-- or ALTER EXTENSION pghistory UPDATE installs it. One statement, for a web
-- SQL console too; run it as a member of pgtle_admin. Run it again after
-- upgrading: it registers what is missing and makes this version the default.
-- Built by the Makefile (make sql) from the scripts PGXS installs.
DO $pghistory_register$
DECLARE
    v_version text;
    v_install text;
    v_updates text[] := '{}';  -- {from, to, script} triples
    v_pgtle text := (SELECT e.extversion FROM pg_catalog.pg_extension AS e WHERE e.extname = 'pg_tle');
    v_i integer;
BEGIN
-- SCRIPTS
    IF v_pgtle IS NULL THEN
        RAISE EXCEPTION 'pghistory: pg_tle is not installed in this database'
            USING ERRCODE = 'undefined_object',
                  HINT = 'CREATE EXTENSION pg_tle (the server needs shared_preload_libraries = ''pg_tle''), then run this again.';
    END IF;
    IF NOT EXISTS (SELECT FROM pgtle.available_extensions() AS a WHERE a.name = 'pghistory') THEN
        IF pg_catalog.string_to_array(v_pgtle, '.')::int[] >= '{1,5,0}' THEN
            PERFORM pgtle.install_extension('pghistory', v_version,
                        'Track every insert, update and delete of a table into a typed event table, with context',
                        v_install, '{plpgsql}', 'pghistory');
        ELSE  -- no schema argument: CREATE EXTENSION pghistory SCHEMA pghistory
            PERFORM pgtle.install_extension('pghistory', v_version,
                        'Track every insert, update and delete of a table into a typed event table, with context',
                        v_install, '{plpgsql}');
        END IF;
    ELSIF NOT EXISTS (SELECT FROM pgtle.available_extension_versions() AS a
                       WHERE a.name = 'pghistory' AND a.version = v_version) THEN
        PERFORM pgtle.install_extension_version_sql('pghistory', v_version, v_install);
    END IF;
    FOR v_i IN 1 .. coalesce(pg_catalog.array_length(v_updates, 1), 0) LOOP
        IF NOT EXISTS (SELECT FROM pgtle.extension_update_paths('pghistory') AS p
                        WHERE p.source = v_updates[v_i][1] AND p.target = v_updates[v_i][2]
                          AND p.path = v_updates[v_i][1] || '--' || v_updates[v_i][2]) THEN
            PERFORM pgtle.install_update_path('pghistory', v_updates[v_i][1], v_updates[v_i][2], v_updates[v_i][3]);
        END IF;
    END LOOP;
    IF (SELECT a.default_version FROM pgtle.available_extensions() AS a WHERE a.name = 'pghistory') <> v_version THEN
        PERFORM pgtle.set_default_version('pghistory', v_version);
    END IF;
END
$pghistory_register$;
