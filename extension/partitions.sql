
-- ---------------------------------------------------------------------------
-- partitions.sql: event tables range-partitioned on pgh_created_at
-- (track(..., partition_by => interval '1 month')): the partition grid,
-- making partitions (with a default partition so that a write never fails),
-- and converting an event table that holds history already
-- ---------------------------------------------------------------------------

-- The start of the partition of p_step holding p_at, on a grid fixed in
-- UTC whatever the session's TimeZone: month steps count months from
-- 2000-01-01, other steps count seconds from the epoch.
CREATE OR REPLACE FUNCTION pghistory._partition_start(p_at timestamptz, p_step interval)
RETURNS timestamptz
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN extract(year FROM p_step) * 12 + extract(month FROM p_step) <> 0
        THEN (timestamp '2000-01-01' + make_interval(months => (floor(
                  ((extract(year FROM p_at AT TIME ZONE 'UTC') - 2000) * 12 + extract(month FROM p_at AT TIME ZONE 'UTC') - 1)
                  / (extract(year FROM p_step) * 12 + extract(month FROM p_step)))
                  * (extract(year FROM p_step) * 12 + extract(month FROM p_step)))::int)) AT TIME ZONE 'UTC'
        ELSE to_timestamp(floor(extract(epoch FROM p_at) / extract(epoch FROM p_step)) * extract(epoch FROM p_step))
    END
$$;

-- The end of the partition starting at p_start (in UTC, as the grid).
CREATE OR REPLACE FUNCTION pghistory._partition_end(p_start timestamptz, p_step interval)
RETURNS timestamptz
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT ((p_start AT TIME ZONE 'UTC') + p_step) AT TIME ZONE 'UTC'
$$;

-- Refuses a partition step that is not a whole number of months, or of
-- days and hours of at least an hour.
CREATE OR REPLACE FUNCTION pghistory._check_partition_step(p_step interval)
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF p_step IS NULL OR p_step < interval '1 hour'
       OR (extract(year FROM p_step) * 12 + extract(month FROM p_step) <> 0
           AND (extract(day FROM p_step) <> 0 OR p_step - date_trunc('day', p_step) <> interval '0'))
       OR extract(year FROM p_step) * 12 + extract(month FROM p_step) < 0 THEN
        RAISE EXCEPTION 'pghistory: partition_by % is not a partition size', coalesce(p_step::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Give whole months (interval ''1 month'', ''1 year'') or days and hours of at least an hour '
                         '(interval ''1 day'', ''7 days'').';
    END IF;
END
$$;

-- Whether an event table is partitioned by pghistory in steps of p_step.
CREATE OR REPLACE FUNCTION pghistory._partitioned_by(p_event_table regclass, p_step interval)
RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT EXISTS (SELECT FROM pghistory.history_policy AS p JOIN pg_catalog.pg_class AS c ON c.oid = p.event_table
                    WHERE p.event_table = p_event_table AND p.partition_by = p_step AND c.relkind = 'p')
$$;

-- The partitions of an event table with their bounds (NULL for the default
-- partition).
CREATE OR REPLACE FUNCTION pghistory._partitions(p_event_table regclass)
RETURNS TABLE (partition regclass, lower_bound timestamptz, upper_bound timestamptz)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT c.oid::regclass, b[1]::timestamptz, b[2]::timestamptz
      FROM pg_catalog.pg_inherits AS i
      JOIN pg_catalog.pg_class AS c ON c.oid = i.inhrelid
      LEFT JOIN LATERAL regexp_match(pg_catalog.pg_get_expr(c.relpartbound, c.oid),
                                     'FROM \(''([^'']*)''\) TO \(''([^'']*)''\)') AS b ON true
     WHERE i.inhparent = p_event_table
     ORDER BY b[1]::timestamptz NULLS FIRST
$$;

-- The columns of a table, in order, as an SQL list.
CREATE OR REPLACE FUNCTION pghistory._column_list(p_table regclass)
RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT string_agg(format('%I', a.attname), ', ' ORDER BY a.attnum)
      FROM pg_catalog.pg_attribute AS a
     WHERE a.attrelid = p_table AND a.attnum > 0 AND NOT a.attisdropped
$$;

-- Sets pghistory.allow_history_changes for the rest of the transaction and
-- returns what it was, for the caller to put back (the documented
-- maintenance path past the append-only guard, taken only by pghistory's
-- maintenance functions after they have checked the caller owns the table).
CREATE OR REPLACE FUNCTION pghistory._allow_history_changes(p_value text)
RETURNS text
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_before text := coalesce(current_setting('pghistory.allow_history_changes', true), '');
BEGIN
    PERFORM set_config('pghistory.allow_history_changes', p_value, true);
    RETURN v_before;
END
$$;

-- Makes the partition [p_from, p_to) of a partitioned event table, unless a
-- partition overlaps it; rows of the default partition in that range move
-- into it. The partition is made apart and then attached: CREATE TABLE
-- ... PARTITION OF would lock the event table ACCESS EXCLUSIVE, and every
-- writer and reader of it would queue behind that; ATTACH PARTITION takes
-- SHARE UPDATE EXCLUSIVE on it, which neither waits for them nor holds
-- them up, and ACCESS EXCLUSIVE only on the new table and on the default
-- partition (which it reads for rows of the new range: they were moved
-- out just before). Partitions belong to the event table's owner and carry
-- its append-only guard (statement triggers are not inherited). Returns
-- the partition made, NULL when none was.
CREATE OR REPLACE FUNCTION pghistory._add_partition(p_event_table regclass, p_from timestamptz, p_to timestamptz)
RETURNS regclass
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_parent record;
    v_name name;
    v_partition regclass;
    v_default regclass;
    v_moving boolean := false;
    v_before text;
BEGIN
    IF EXISTS (SELECT FROM pghistory._partitions(p_event_table) AS p
                WHERE p.lower_bound < p_to AND p.upper_bound > p_from) THEN
        RETURN NULL;
    END IF;
    SELECT n.nspname, c.relname, c.relowner INTO v_parent
      FROM pg_catalog.pg_class AS c JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
     WHERE c.oid = p_event_table;
    v_name := pghistory._fit_identifier(v_parent.relname || '_p'
                  || to_char(p_from AT TIME ZONE 'UTC',
                             CASE WHEN p_to - p_from < interval '1 day' THEN 'YYYYMMDD"_"HH24MI' ELSE 'YYYYMMDD' END));
    EXECUTE format('CREATE TABLE %I.%I (LIKE %s INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING STORAGE '
                   'INCLUDING COMPRESSION)',
                   v_parent.nspname, v_name, p_event_table);
    v_partition := format('%I.%I', v_parent.nspname, v_name)::regclass;
    SELECT NULLIF(t.partdefid, 0)::regclass INTO v_default
      FROM pg_catalog.pg_partitioned_table AS t WHERE t.partrelid = p_event_table;
    IF v_default IS NOT NULL THEN
        EXECUTE format('SELECT EXISTS (SELECT FROM %s WHERE pgh_created_at >= %L AND pgh_created_at < %L)',
                       v_default, p_from, p_to) INTO v_moving;
    END IF;
    IF v_moving THEN
        -- a partition cannot be attached over rows of the default partition
        v_before := pghistory._allow_history_changes('on');
        EXECUTE format('WITH moved AS (DELETE FROM %s WHERE pgh_created_at >= %L AND pgh_created_at < %L RETURNING %s) '
                       'INSERT INTO %s (%s) SELECT %s FROM moved',
                       v_default, p_from, p_to, pghistory._column_list(p_event_table),
                       v_partition, pghistory._column_list(p_event_table), pghistory._column_list(p_event_table));
        PERFORM pghistory._allow_history_changes(v_before);
    END IF;
    EXECUTE format('ALTER TABLE %s ATTACH PARTITION %s FOR VALUES FROM (%L) TO (%L)',
                   p_event_table, v_partition, p_from, p_to);
    PERFORM pghistory._dress_partition(p_event_table, v_partition);
    RETURN v_partition;
END
$$;

-- Gives a partition its event table's owner and append-only guard.
CREATE OR REPLACE FUNCTION pghistory._dress_partition(p_event_table regclass, p_partition regclass)
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    EXECUTE format('ALTER TABLE %s OWNER TO %I', p_partition,
                   pg_get_userbyid((SELECT c.relowner FROM pg_catalog.pg_class AS c WHERE c.oid = p_event_table)));
    EXECUTE format('REVOKE ALL ON %s FROM PUBLIC', p_partition);
    PERFORM pghistory._set_append_only(p_partition,
                EXISTS (SELECT FROM pg_catalog.pg_trigger AS g
                         WHERE g.tgrelid = p_event_table AND g.tgname = 'pgh_append_only'));
END
$$;

-- Makes what a partitioned event table needs now: a default partition, a
-- partition for the rows that landed in it, the current partition and
-- p_ahead more. Idempotent. Returns how many partitions it made.
CREATE OR REPLACE FUNCTION pghistory._make_partitions(p_event_table regclass, p_step interval, p_ahead int DEFAULT 3)
RETURNS int
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_default regclass;
    v_start timestamptz;
    v_made int := 0;
    v_name name;
BEGIN
    SELECT NULLIF(t.partdefid, 0)::regclass INTO v_default
      FROM pg_catalog.pg_partitioned_table AS t WHERE t.partrelid = p_event_table;
    IF v_default IS NULL THEN
        v_name := pghistory._fit_identifier((SELECT c.relname FROM pg_catalog.pg_class AS c
                                              WHERE c.oid = p_event_table) || '_default');
        EXECUTE format('CREATE TABLE %I.%I PARTITION OF %s DEFAULT',
                       (SELECT n.nspname FROM pg_catalog.pg_class AS c
                          JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace WHERE c.oid = p_event_table),
                       v_name, p_event_table);
        v_default := (SELECT t.partdefid::regclass FROM pg_catalog.pg_partitioned_table AS t
                       WHERE t.partrelid = p_event_table);
        PERFORM pghistory._dress_partition(p_event_table, v_default);
        v_made := v_made + 1;
    END IF;
    FOR v_start IN EXECUTE format('SELECT DISTINCT pghistory._partition_start(pgh_created_at, %L) FROM %s ORDER BY 1',
                                  p_step, v_default) LOOP
        v_made := v_made + (pghistory._add_partition(p_event_table, v_start,
                                                     pghistory._partition_end(v_start, p_step)) IS NOT NULL)::int;
    END LOOP;
    v_start := pghistory._partition_start(now(), p_step);
    FOR i IN 0 .. p_ahead LOOP
        v_made := v_made + (pghistory._add_partition(p_event_table, v_start,
                                                     pghistory._partition_end(v_start, p_step)) IS NOT NULL)::int;
        v_start := pghistory._partition_end(v_start, p_step);
    END LOOP;
    RETURN v_made;
END
$$;
