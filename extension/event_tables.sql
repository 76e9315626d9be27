
-- ---------------------------------------------------------------------------
-- event_tables.sql: creating event tables and keeping their columns in step
-- with the tracked table
-- ---------------------------------------------------------------------------

-- Creates the event table with pghistory's own columns, owned by the
-- tracked table's owner whoever calls; the tracked columns are added by
-- _add_event_columns(). pgh_id comes from pghistory.event_id_seq, shared by
-- every event table (tables.sql). Its primary key index is packed full
-- (fillfactor 100): pgh_ids only grow, every insert goes to its last page,
-- and the room a page split leaves for inserts in between would stay empty.
-- The (pgh_obj_id, pgh_id) index makes one object's history, and its
-- latest event, one probe. pgh_xact is the transaction that wrote the
-- event (pg_current_xact_id(): 64 bits, never reused in a cluster), so
-- that events can be grouped by transaction across tables; it is not
-- indexed (grouping reads events already found some other way).
CREATE OR REPLACE FUNCTION pghistory._create_event_table(p_schema name, p_name name, p_tracked regclass)
RETURNS regclass
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_event_table regclass;
    v_obj_id_type text := pghistory._object_key_type(p_tracked);
BEGIN
    EXECUTE format($sql$
        CREATE TABLE %I.%I (
            pgh_id         bigint      DEFAULT pg_catalog.nextval('pghistory.event_id_seq') PRIMARY KEY WITH (fillfactor = 100),
            pgh_created_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
            pgh_xact       xid8        DEFAULT pg_catalog.pg_current_xact_id(),
            pgh_label      text        NOT NULL,
            pgh_obj_id     %s
        )$sql$, p_schema, p_name, v_obj_id_type);
    v_event_table := format('%I.%I', p_schema, p_name)::regclass;
    EXECUTE format('CREATE INDEX ON %s (pgh_obj_id, pgh_id)', v_event_table);
    EXECUTE format('COMMENT ON TABLE %s IS %L', v_event_table,
                   'pghistory: events of ' || pghistory._qualified_name(p_tracked));
    -- history is read through grants given on purpose, never by default
    EXECUTE format('REVOKE ALL ON %s FROM PUBLIC', v_event_table);
    EXECUTE format('ALTER TABLE %s OWNER TO %I', v_event_table,
                   pg_get_userbyid((SELECT c.relowner FROM pg_catalog.pg_class AS c WHERE c.oid = p_tracked)));
    RETURN v_event_table;
END
$$;

-- Moves pghistory.event_id_seq past p_max (a largest pgh_id the caller
-- found in an event table), never back; true when it moved. SECURITY
-- DEFINER: table owners, who may not setval() the sequence every event
-- table shares, need it after a failover or for a table numbered its own
-- way (reset_identities(), _use_event_id_seq()). EXECUTE stays with
-- PUBLIC: all anyone can do with it is a gap in the numbers, and never
-- past 2^62, so half the bigint range (4.6e18 events) stays for everyone
-- whatever is passed; a larger p_max is refused. (Meant for maintenance:
-- a writer numbering events between the look and the move is not waited
-- for.)
CREATE OR REPLACE FUNCTION pghistory._event_ids_past(p_max bigint)
RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF p_max IS NULL OR p_max <= coalesce(pg_catalog.pg_sequence_last_value('pghistory.event_id_seq'), 0) THEN
        RETURN false;
    END IF;
    IF p_max > 4611686018427387904 THEN
        RAISE EXCEPTION 'pghistory: pghistory.event_id_seq is not moved past 2^62 (pgh_id % was asked for)', p_max
            USING ERRCODE = 'numeric_value_out_of_range',
                  DETAIL = 'Every event table takes its pgh_id from that sequence; half of its range stays for them.',
                  HINT = 'Renumber the events above 2^62, or have a superuser setval() the sequence.';
    END IF;
    PERFORM pg_catalog.setval('pghistory.event_id_seq', p_max, true);
    RETURN true;
END
$$;

-- Whether relation p_relation takes its pgh_id from sequence p_sequence by
-- default: pghistory.event_id_seq for the event tables track() makes,
-- pghistory.node_event_id_seq for a distributed one (its shell on a
-- worker included; citus.sql).
CREATE OR REPLACE FUNCTION pghistory._numbered_by(p_relation oid, p_sequence regclass)
RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT EXISTS (SELECT FROM pg_catalog.pg_attrdef AS ad
                     JOIN pg_catalog.pg_attribute AS a ON a.attrelid = ad.adrelid AND a.attnum = ad.adnum
                     JOIN pg_catalog.pg_depend AS d
                       ON d.classid = 'pg_catalog.pg_attrdef'::regclass AND d.objid = ad.oid
                    WHERE ad.adrelid = p_relation AND a.attname = 'pgh_id'
                      AND d.refclassid = 'pg_catalog.pg_class'::regclass AND d.refobjid = p_sequence)
$$;

-- Gives an event table its pgh_id from pghistory.event_id_seq when it has
-- it some other way: a table made before 0.2.0 and kept after untrack()
-- (its own identity goes), or one whose default DROP EXTENSION ... CASCADE
-- took. The sequence then moves past its largest pgh_id. One catalog
-- lookup for a table numbered so already, which is every table track()
-- made. A Citus table keeps the numbering _citus_node_numbering() gave it:
-- each node numbers its own events there (pghistory.node_event_id_seq).
CREATE OR REPLACE FUNCTION pghistory._use_event_id_seq(p_event_table regclass)
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_max bigint;
BEGIN
    IF pghistory._numbered_by(p_event_table, 'pghistory.event_id_seq') THEN
        RETURN;
    END IF;
    IF (pghistory._citus_distribution(p_event_table)).kind IS NOT NULL THEN
        RETURN;
    END IF;
    EXECUTE format('ALTER TABLE %s ALTER COLUMN pgh_id DROP IDENTITY IF EXISTS', p_event_table);
    EXECUTE format('ALTER TABLE %s ALTER COLUMN pgh_id SET DEFAULT pg_catalog.nextval(''pghistory.event_id_seq'')',
                   p_event_table);
    EXECUTE format('SELECT max(pgh_id) FROM %s', p_event_table) INTO v_max;
    PERFORM pghistory._event_ids_past(v_max);
END
$$;

-- Brings an event table up to a configuration: adds the tracked columns it
-- lacks (typed like the tracked table's, without constraints), the
-- context columns the mode needs, and pgh_xact to a table made before
-- 0.2.0 (its events keep NULL there: their transaction is not known; a
-- volatile default in ADD COLUMN would give them all this one). Never
-- drops anything: history stays.
CREATE OR REPLACE FUNCTION pghistory._add_event_columns(p_config pghistory.tracked)
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_additions text;
BEGIN
    PERFORM pghistory._use_event_id_seq(p_config.event_table);
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_attribute
                    WHERE attrelid = p_config.event_table AND attname = 'pgh_xact' AND NOT attisdropped) THEN
        EXECUTE format('ALTER TABLE %s ADD COLUMN pgh_xact xid8', p_config.event_table);
        EXECUTE format('ALTER TABLE %s ALTER COLUMN pgh_xact SET DEFAULT pg_catalog.pg_current_xact_id()',
                       p_config.event_table);
    END IF;
    IF p_config.context IN ('fk', 'json') AND NOT EXISTS (
            SELECT FROM pg_catalog.pg_attribute
             WHERE attrelid = p_config.event_table AND attname = 'pgh_context_id' AND NOT attisdropped) THEN
        EXECUTE format('ALTER TABLE %s ADD COLUMN pgh_context_id uuid', p_config.event_table);
        EXECUTE format('CREATE INDEX ON %s (pgh_context_id)', p_config.event_table);
    END IF;
    IF p_config.context = 'json' AND NOT EXISTS (
            SELECT FROM pg_catalog.pg_attribute
             WHERE attrelid = p_config.event_table AND attname = 'pgh_context' AND NOT attisdropped) THEN
        EXECUTE format('ALTER TABLE %s ADD COLUMN pgh_context jsonb', p_config.event_table);
    END IF;
    -- one ALTER TABLE for all of them: each is followed by the event triggers
    SELECT string_agg(format('ADD COLUMN %I %s%s', c.column_name, c.column_type,
                             CASE WHEN a.attcollation <> 0 AND a.attcollation <> t.typcollation
                                  THEN format(' COLLATE %I.%I', cn.nspname, co.collname) ELSE '' END),
                      ', ' ORDER BY a.attnum)
      INTO v_additions
      FROM pghistory._tracked_columns(p_config.tracked_table, p_config.fields, p_config.exclude) AS c
      JOIN pg_catalog.pg_attribute AS a
        ON a.attrelid = p_config.tracked_table AND a.attname = c.column_name
      JOIN pg_catalog.pg_type AS t ON t.oid = a.atttypid
      LEFT JOIN pg_catalog.pg_collation AS co ON co.oid = a.attcollation
      LEFT JOIN pg_catalog.pg_namespace AS cn ON cn.oid = co.collnamespace
     WHERE NOT EXISTS (SELECT FROM pg_catalog.pg_attribute AS e
                        WHERE e.attrelid = p_config.event_table AND e.attname = c.column_name
                          AND e.attnum > 0 AND NOT e.attisdropped);
    IF v_additions IS NOT NULL THEN
        EXECUTE format('ALTER TABLE %s %s', p_config.event_table, v_additions);
    END IF;
END
$$;
