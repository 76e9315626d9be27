
-- ---------------------------------------------------------------------------
-- trackers.sql: the tracker constructors
--
-- track() takes an array of these. Each validates what it can on its own;
-- column names and conditions are checked against the table by track().
-- ---------------------------------------------------------------------------

-- The checks every constructor shares: a label that is present and short
-- enough to name the trigger made for it.
CREATE OR REPLACE FUNCTION pghistory._tracker(p_label text, p_operation text, p_condition text,
                                   p_changed text[], p_snapshot text)
RETURNS pghistory.tracker
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF p_label IS NULL OR btrim(p_label) = '' THEN
        RAISE EXCEPTION 'pghistory: a % tracker needs a label', p_operation
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Labels name events in pgh_label, such as ''insert'' or ''status_changed''.';
    END IF;
    IF p_snapshot NOT IN ('new', 'old') THEN
        RAISE EXCEPTION 'pghistory: snapshot must be ''new'' or ''old'', not %', quote_nullable(p_snapshot)
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = '''new'' stores the row after the update, ''old'' the row before it.';
    END IF;
    IF p_changed = '{}' THEN
        RAISE EXCEPTION 'pghistory: changed is empty, so tracker "%" would never fire', p_label
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Name the columns whose change records the event, or pass NULL for any tracked column.';
    END IF;
    RETURN ROW(p_label, p_operation, nullif(btrim(p_condition), ''), p_changed, p_snapshot)::pghistory.tracker;
END
$$;

-- After INSERT: stores the new row.
CREATE OR REPLACE FUNCTION pghistory.insert_event(label text DEFAULT 'insert', condition text DEFAULT NULL)
RETURNS pghistory.tracker
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT pghistory._tracker(label, 'insert', condition, NULL, 'new') $$;
COMMENT ON FUNCTION pghistory.insert_event(text, text) IS
    'pghistory: a tracker for track(): after INSERT, the new row (label, condition over NEW)';

-- After UPDATE: stores the new row (snapshot => 'old': the row before).
-- Fires only when a tracked column changed, or one of `changed`.
CREATE OR REPLACE FUNCTION pghistory.update_event(label text DEFAULT 'update', changed text[] DEFAULT NULL,
                                       condition text DEFAULT NULL, snapshot text DEFAULT 'new')
RETURNS pghistory.tracker
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT pghistory._tracker(label, 'update', condition, changed, snapshot) $$;
COMMENT ON FUNCTION pghistory.update_event(text, text[], text, text) IS
    'pghistory: a tracker for track(): after UPDATE that changes a tracked column (or one of changed), the new row, or the old with snapshot => ''old''';

-- After DELETE: stores the deleted row.
CREATE OR REPLACE FUNCTION pghistory.delete_event(label text DEFAULT 'delete', condition text DEFAULT NULL)
RETURNS pghistory.tracker
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT pghistory._tracker(label, 'delete', condition, NULL, 'old') $$;
COMMENT ON FUNCTION pghistory.delete_event(text, text) IS
    'pghistory: a tracker for track(): after DELETE, the deleted row (label, condition over OLD)';

-- Before TRUNCATE: stores every row the TRUNCATE removes.
CREATE OR REPLACE FUNCTION pghistory.truncate_event(label text DEFAULT 'truncate')
RETURNS pghistory.tracker
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT pghistory._tracker(label, 'truncate', NULL, NULL, 'old') $$;
COMMENT ON FUNCTION pghistory.truncate_event(text) IS
    'pghistory: a tracker for track(): before TRUNCATE, every row it removes';

-- Recorded only by pghistory.create_event(table, obj_id, label).
CREATE OR REPLACE FUNCTION pghistory.manual_event(label text)
RETURNS pghistory.tracker
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT pghistory._tracker(label, 'manual', NULL, NULL, 'new') $$;
COMMENT ON FUNCTION pghistory.manual_event(text) IS
    'pghistory: a tracker for track() that no trigger fires: a label that create_event() records';

-- What track() records when it is given no trackers.
CREATE OR REPLACE FUNCTION pghistory._default_trackers()
RETURNS pghistory.tracker[]
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT ARRAY[pghistory.insert_event(), pghistory.update_event(),
                 pghistory.delete_event(), pghistory.truncate_event()]
$$;
