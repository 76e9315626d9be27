
-- ---------------------------------------------------------------------------
-- partition_convert.sql: turning an event table into one range-partitioned
-- on pgh_created_at, its history moved along, and the policy table's only
-- writers (pghistory.history_policy: partition size and retention)
-- ---------------------------------------------------------------------------

-- Refuses a session user without the rights of p_event_table's owner;
-- p_action says what was refused ("only the owner of t can <p_action>").
-- The check of the SECURITY DEFINER writers of pghistory's own tables
-- (_set_policy(), _record_redaction()): session_user, as current_user is
-- the extension's owner there.
CREATE OR REPLACE FUNCTION pghistory._check_event_table_owner(p_event_table regclass, p_action text)
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_class AS c
                    WHERE c.oid = p_event_table AND pg_has_role(session_user, c.relowner, 'USAGE')) THEN
        RAISE EXCEPTION 'pghistory: only the owner of % can %', p_event_table, p_action
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'Log in as the owner of the event table or as a member of that role.';
    END IF;
END
$$;

-- Sets the policy of an event table: its partition size (kept when
-- p_partition_by is NULL) and, when p_set_retention, its retention (keep
-- NULL: none). Refuses a session user without the rights of the event
-- table's owner. SECURITY DEFINER (only the extension's owner writes the
-- table); EXECUTE stays with PUBLIC: it changes only what the owner could
-- change through track() and set_retention() anyway.
CREATE OR REPLACE FUNCTION pghistory._set_policy(p_event_table regclass, p_partition_by interval,
                                                 p_set_retention boolean, p_keep interval, p_keep_latest boolean)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM pghistory._check_event_table_owner(p_event_table, 'change its partitioning or retention');
    INSERT INTO pghistory.history_policy AS p (event_table, partition_by, keep, keep_latest)
    VALUES (p_event_table, p_partition_by, p_keep, coalesce(p_keep_latest, true))
    ON CONFLICT (event_table) DO UPDATE
       SET partition_by = coalesce(excluded.partition_by, p.partition_by),
           keep = CASE WHEN p_set_retention THEN excluded.keep ELSE p.keep END,
           keep_latest = CASE WHEN p_set_retention THEN excluded.keep_latest ELSE p.keep_latest END;
END
$$;

-- Forgets the policies of event tables that no longer exist. EXECUTE stays
-- with PUBLIC: it touches only rows whose table is gone.
CREATE OR REPLACE FUNCTION pghistory._forget_dropped_policies()
RETURNS void
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    DELETE FROM pghistory.history_policy AS p
     WHERE NOT EXISTS (SELECT FROM pg_catalog.pg_class AS c WHERE c.oid = p.event_table)
$$;

-- Makes p_event_table range-partitioned on pgh_created_at in steps of
-- p_step, in the caller's transaction: a new table of the same name, columns
-- (and defaults, identity, comments), indexes (the primary key becomes
-- (pgh_id, pgh_created_at), as partitioning requires), owner, grants and
-- append-only guard; the history is copied into it, the pgh_id identity
-- continues where it was, the registry and policy follow, and the old table
-- is dropped. An event table partitioned already only gets its new step.
-- Refuses, before anything is written, event tables other objects depend
-- on (views), with triggers or unique indexes of their own, or with
-- row-level security policies. Returns the (new) event table.
CREATE OR REPLACE FUNCTION pghistory._partition_event_table(p_event_table regclass, p_step interval)
RETURNS regclass
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_old record;
    v_config pghistory.tracked;
    v_policy pghistory.history_policy;
    v_indexes text[];
    v_index text;
    v_old_table regclass;
    v_new regclass;
    v_seq regclass;
    v_last_value bigint;
    v_is_called boolean;
    v_grant record;
    v_start timestamptz;
    v_min timestamptz;
BEGIN
    PERFORM pghistory._check_partition_step(p_step);
    SELECT c.relkind, c.relowner, c.relname, n.nspname, obj_description(c.oid, 'pg_class') AS comment INTO v_old
      FROM pg_catalog.pg_class AS c JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
     WHERE c.oid = p_event_table;
    IF v_old.relkind = 'p' THEN
        PERFORM pghistory._set_policy(p_event_table, p_step, false, NULL, NULL);
        PERFORM pghistory._make_partitions(p_event_table, p_step);
        RETURN p_event_table;
    END IF;
    IF EXISTS (SELECT FROM pg_catalog.pg_depend AS d JOIN pg_catalog.pg_rewrite AS r ON r.oid = d.objid
                WHERE d.classid = 'pg_rewrite'::regclass AND d.refobjid = p_event_table AND r.ev_class <> p_event_table)
       OR EXISTS (SELECT FROM pg_catalog.pg_trigger AS g
                   WHERE g.tgrelid = p_event_table AND g.tgname <> 'pgh_append_only' AND NOT g.tgisinternal)
       OR EXISTS (SELECT FROM pg_catalog.pg_index AS i
                   WHERE i.indrelid = p_event_table AND i.indisunique AND NOT i.indisprimary)
       OR EXISTS (SELECT FROM pg_catalog.pg_constraint AS k
                   WHERE (k.conrelid = p_event_table AND k.contype IN ('f', 'x'))
                      OR (k.confrelid = p_event_table))
       OR EXISTS (SELECT FROM pg_catalog.pg_policy AS y WHERE y.polrelid = p_event_table) THEN
        RAISE EXCEPTION 'pghistory: % cannot be partitioned as it is: views, foreign keys, triggers, unique indexes '
                        'or policies of its own depend on its current form', p_event_table
            USING ERRCODE = 'object_in_use',
                  HINT = 'Drop them (and make them again on the partitioned table), then run track() again.';
    END IF;

    EXECUTE format('LOCK TABLE %s IN ACCESS EXCLUSIVE MODE', p_event_table);
    SELECT * INTO v_config FROM pghistory.tracked AS t WHERE t.event_table = p_event_table;
    SELECT * INTO v_policy FROM pghistory.history_policy AS p WHERE p.event_table = p_event_table;
    v_indexes := ARRAY(SELECT pg_catalog.pg_get_indexdef(i.indexrelid) FROM pg_catalog.pg_index AS i
                        WHERE i.indrelid = p_event_table AND NOT i.indisprimary ORDER BY i.indexrelid);
    v_seq := pg_catalog.pg_get_serial_sequence(p_event_table::text, 'pgh_id')::regclass;

    -- the old table and its sequence step aside; the new one takes the names
    EXECUTE format('ALTER TABLE %s RENAME TO %I', p_event_table,
                   pghistory._fit_identifier(v_old.relname || '_unpartitioned'));
    v_old_table := p_event_table;
    IF v_seq IS NOT NULL THEN
        EXECUTE format('ALTER SEQUENCE %s RENAME TO %I', v_seq,
                       pghistory._fit_identifier(v_old.relname || '_unpartitioned_seq'));
        EXECUTE format('SELECT last_value, is_called FROM %s', v_seq) INTO v_last_value, v_is_called;
    END IF;
    EXECUTE format('CREATE TABLE %I.%I (LIKE %s INCLUDING DEFAULTS INCLUDING IDENTITY INCLUDING CONSTRAINTS '
                   'INCLUDING COMMENTS INCLUDING STORAGE INCLUDING COMPRESSION INCLUDING STATISTICS) '
                   'PARTITION BY RANGE (pgh_created_at)',
                   v_old.nspname, v_old.relname, v_old_table);
    v_new := format('%I.%I', v_old.nspname, v_old.relname)::regclass;
    EXECUTE format('ALTER TABLE %s OWNER TO %I', v_new, pg_get_userbyid(v_old.relowner));
    EXECUTE format('REVOKE ALL ON %s FROM PUBLIC', v_new);
    FOR v_grant IN
        SELECT a.grantee, a.privilege_type, a.is_grantable, NULL::name AS column_name
          FROM pg_catalog.pg_class AS c CROSS JOIN LATERAL aclexplode(c.relacl) AS a
         WHERE c.oid = v_old_table AND a.grantee <> c.relowner
        UNION ALL
        SELECT a.grantee, a.privilege_type, a.is_grantable, t.attname
          FROM pg_catalog.pg_attribute AS t CROSS JOIN LATERAL aclexplode(t.attacl) AS a
         WHERE t.attrelid = v_old_table AND t.attnum > 0 AND NOT t.attisdropped
    LOOP
        EXECUTE format('GRANT %s%s ON %s TO %s%s', v_grant.privilege_type,
                       CASE WHEN v_grant.column_name IS NOT NULL THEN format(' (%I)', v_grant.column_name) ELSE '' END,
                       v_new, CASE WHEN v_grant.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(v_grant.grantee)) END,
                       CASE WHEN v_grant.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END);
    END LOOP;
    EXECUTE format('COMMENT ON TABLE %s IS %L', v_new, v_old.comment);
    PERFORM pghistory._set_append_only(v_new, EXISTS (SELECT FROM pg_catalog.pg_trigger AS g
                                                        WHERE g.tgrelid = v_old_table AND g.tgname = 'pgh_append_only'));

    -- partitions for the history there is, then the history
    EXECUTE format('SELECT min(pgh_created_at) FROM %s', v_old_table) INTO v_min;
    v_start := pghistory._partition_start(least(coalesce(v_min, now()), now()), p_step);
    WHILE v_start < pghistory._partition_start(now(), p_step) LOOP
        PERFORM pghistory._add_partition(v_new, v_start, pghistory._partition_end(v_start, p_step));
        v_start := pghistory._partition_end(v_start, p_step);
    END LOOP;
    PERFORM pghistory._make_partitions(v_new, p_step);
    EXECUTE format('INSERT INTO %s (%s) SELECT %s FROM %s', v_new, pghistory._column_list(v_new),
                   pghistory._column_list(v_new), v_old_table);
    IF v_seq IS NOT NULL THEN
        PERFORM setval(pg_catalog.pg_get_serial_sequence(v_new::text, 'pgh_id'), v_last_value, v_is_called);
    END IF;

    -- the registry and the policy follow, then the old table goes
    IF v_config.tracked_table IS NOT NULL THEN
        v_config.event_table := v_new;
        PERFORM pghistory._register(v_config);
    END IF;
    PERFORM pghistory._set_policy(v_new, p_step, v_policy.event_table IS NOT NULL, v_policy.keep, v_policy.keep_latest);
    EXECUTE format('DROP TABLE %s', v_old_table);
    PERFORM pghistory._forget_dropped_policies();
    EXECUTE format('ALTER TABLE %s ADD CONSTRAINT %I PRIMARY KEY (pgh_id, pgh_created_at)', v_new,
                   pghistory._fit_identifier(v_old.relname || '_pkey'));
    FOREACH v_index IN ARRAY v_indexes LOOP
        EXECUTE v_index;
    END LOOP;
    IF v_config.tracked_table IS NOT NULL THEN  -- the trigger functions name the event table
        PERFORM pghistory._generate_triggers(v_config.tracked_table);
    END IF;
    RETURN v_new;
END
$$;
