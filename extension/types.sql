
-- ---------------------------------------------------------------------------
-- types.sql: what a tracker is
-- ---------------------------------------------------------------------------

-- One event that track() records for a table. Build them with the
-- constructors in trackers.sql rather than by hand: those validate.
CREATE TYPE pghistory.tracker AS (
    label     text,    -- the event's pgh_label; unique per tracked table
    operation text,    -- insert | update | delete | truncate | manual
    condition text,    -- SQL boolean expression over OLD and NEW, or NULL
    changed   text[],  -- update: the columns whose change fires it (NULL: any tracked column)
    snapshot  text     -- which row is stored: 'new' (insert, update) or 'old' (update, delete, truncate)
);
