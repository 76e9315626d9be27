
-- ---------------------------------------------------------------------------
-- relations.sql: naming, quoting and ownership of relations, and the tree
-- of a partitioned table
-- ---------------------------------------------------------------------------

-- A relation's name, always schema-qualified and quoted where needed:
-- public.orders, "Sales"."order items".
CREATE OR REPLACE FUNCTION pghistory._qualified_name(p_relation regclass)
RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT format('%I.%I', n.nspname, c.relname)
      FROM pg_catalog.pg_class AS c
      JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
     WHERE c.oid = p_relation
$$;

-- An identifier in double quotes, always. format('%I') leaves words like
-- "if" or "loop" bare, which SQL accepts but PL/pgSQL reads as its own
-- keywords in NEW.if; generated trigger functions quote every column.
CREATE OR REPLACE FUNCTION pghistory._quoted(p_name text)
RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT '"' || replace(p_name, '"', '""') || '"' $$;

-- Fits a generated name into an identifier (63 bytes). Names that are too
-- long keep their start and end in a hash of the full name, so two long
-- names that share a prefix still differ.
CREATE OR REPLACE FUNCTION pghistory._fit_identifier(p_name text)
RETURNS text
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_name text := p_name;
BEGIN
    IF octet_length(v_name) <= 63 THEN
        RETURN v_name;
    END IF;
    -- cut by characters, not bytes, so a multibyte character is never split
    WHILE octet_length(v_name) > 54 LOOP
        v_name := left(v_name, -1);
    END LOOP;
    RETURN v_name || '_' || left(md5(p_name), 8);
END
$$;

-- Whether the current role owns a table (directly or through a role it
-- belongs to): what it takes to change how the table is tracked.
CREATE OR REPLACE FUNCTION pghistory._owns(p_table regclass)
RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT pg_has_role(current_user, c.relowner, 'USAGE')
      FROM pg_catalog.pg_class AS c
     WHERE c.oid = p_table
$$;

-- A table and, when it is partitioned, all its partitions, root first.
-- (pg_partition_tree() alone returns nothing for a plain table.)
CREATE OR REPLACE FUNCTION pghistory._table_tree(p_table regclass)
RETURNS TABLE (relid regclass, relkind "char")
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT c.oid::regclass, c.relkind
      FROM pg_catalog.pg_class AS c
      LEFT JOIN pg_catalog.pg_partition_tree(p_table) AS t ON t.relid = c.oid
     WHERE c.oid = p_table OR t.relid IS NOT NULL
     ORDER BY coalesce(t.level, 0), c.oid
$$;

-- Whether the current role is a superuser.
CREATE OR REPLACE FUNCTION pghistory._is_superuser()
RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT r.rolsuper FROM pg_catalog.pg_roles AS r WHERE r.rolname = current_user $$;
