# pghistory: PGXS build, plus the project's own targets (make help).
EXTENSION  = pghistory
EXTVERSION = $(shell sed -n "s/^default_version *= *'\(.*\)'/\1/p" pghistory.control)

# The install script is assembled from the parts in extension/, in this
# order: each part may use only what the parts before it define.
#   SCHEMA_PARTS create the extension's types and tables: they run once, at
#     CREATE EXTENSION; an update script changes them by hand.
#   CODE_PARTS define functions, views and privileges, and can run again
#     (CREATE OR REPLACE, DROP POLICY IF EXISTS): the update script to this
#     version is its own file in extension/ followed by all of them.
SCHEMA_PARTS = \
	extension/types.sql \
	extension/tables.sql
CODE_PARTS = \
	extension/relations.sql \
	extension/citus.sql \
	extension/columns.sql \
	extension/identity.sql \
	extension/context.sql \
	extension/trackers.sql \
	extension/event_tables.sql \
	extension/expressions.sql \
	extension/trigger_parts.sql \
	extension/triggers.sql \
	extension/registry.sql \
	extension/append_only.sql \
	extension/partitions.sql \
	extension/partition_convert.sql \
	extension/track_checks.sql \
	extension/track.sql \
	extension/distribute.sql \
	extension/create_event.sql \
	extension/tracking_view.sql \
	extension/diffs.sql \
	extension/events.sql \
	extension/revert.sql \
	extension/schema_snapshot.sql \
	extension/follow_schema.sql \
	extension/event_triggers.sql \
	extension/backfill.sql \
	extension/as_of.sql \
	extension/blame.sql \
	extension/revert_context.sql \
	extension/status.sql \
	extension/retention.sql \
	extension/redact.sql \
	extension/maintain.sql \
	extension/privileges.sql
PARTS = extension/header.sql $(SCHEMA_PARTS) $(CODE_PARTS)

# Update scripts: the one leading to this version (extension/pghistory--A--$(EXTVERSION).sql)
# is built from its file plus the code parts; those of earlier steps were
# frozen, as built, when their version was released, and install as they are.
UPDATE_SOURCES = $(wildcard extension/$(EXTENSION)--*--$(EXTVERSION).sql)
UPDATES_BUILT  = $(notdir $(UPDATE_SOURCES))

DATA_built = $(EXTENSION)--$(EXTVERSION).sql $(UPDATES_BUILT)
DATA       = $(filter-out $(UPDATE_SOURCES),$(wildcard extension/$(EXTENSION)--*--*.sql))
EXTRA_CLEAN = tests/results tests/regression.diffs tests/regression.out

# pg_regress: the quick SQL-only check (make installcheck against a running server)
REGRESS      = $(patsubst tests/sql/%.sql,%,$(sort $(wildcard tests/sql/*.sql)))
REGRESS_OPTS = --inputdir=tests --outputdir=tests --load-extension=plpgsql

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs 2>/dev/null)
ifneq ($(PGXS),)
include $(PGXS)
else ifneq ($(filter-out sql help test demo bench psql,$(or $(MAKECMDGOALS),all)),)
$(error no $(PG_CONFIG): set PG_CONFIG to the pg_config of the server to build for)
endif

$(EXTENSION)--$(EXTVERSION).sql: $(PARTS) pghistory.control
	cat $(PARTS) > $@

$(EXTENSION)--%--$(EXTVERSION).sql: extension/$(EXTENSION)--%--$(EXTVERSION).sql $(CODE_PARTS) extension/update_end.sql
	cat $< $(CODE_PARTS) extension/update_end.sql > $@

# The ways in where no extension files can be copied to the server, built
# into the Python package (python/pghistory/sql/, its package data) from the
# same scripts PGXS installs:
#   *.plain.sql         install or update by `psql -f` without CREATE EXTENSION:
#                       the script in one transaction, into schema pghistory,
#                       its version recorded as the schema's comment;
#   pghistory-pg_tle.sql  one DO statement that registers the install script and
#                       every update script with pg_tle (then CREATE EXTENSION).
SQL_DIR      = python/pghistory/sql
ALL_UPDATES  = $(UPDATES_BUILT) $(notdir $(DATA))
SQL_SCRIPTS  = $(addprefix $(SQL_DIR)/,$(EXTENSION)--$(EXTVERSION).sql $(ALL_UPDATES) \
	$(EXTENSION)--$(EXTVERSION).plain.sql $(ALL_UPDATES:.sql=.plain.sql) $(EXTENSION)-pg_tle.sql)
EXTRA_CLEAN += $(SQL_SCRIPTS)
all: $(SQL_SCRIPTS)
sql: $(SQL_SCRIPTS)

$(addprefix $(SQL_DIR)/,$(DATA_built)): $(SQL_DIR)/%: %
	mkdir -p $(SQL_DIR) && cp $< $@
$(addprefix $(SQL_DIR)/,$(notdir $(DATA))): $(SQL_DIR)/%: extension/%
	mkdir -p $(SQL_DIR) && cp $< $@
$(SQL_DIR)/$(EXTENSION)--%.plain.sql: $(SQL_DIR)/$(EXTENSION)--%.sql
	{ echo 'BEGIN;'; echo 'CREATE SCHEMA IF NOT EXISTS pghistory;'; grep -v '^\\echo ' $<; \
	  echo "COMMENT ON SCHEMA pghistory IS 'pghistory $(lastword $(subst --, ,$*)) (plain script)';"; echo 'COMMIT;'; } > $@
$(SQL_DIR)/$(EXTENSION)-pg_tle.sql: extension/pg_tle.sql $(addprefix $(SQL_DIR)/,$(EXTENSION)--$(EXTVERSION).sql $(ALL_UPDATES))
	{ sed -n '1,/^-- SCRIPTS$$/p' $<; \
	  printf "    v_version := '%s';\n    v_install := \$$pghistory_sql\$$" $(EXTVERSION); cat $(SQL_DIR)/$(EXTENSION)--$(EXTVERSION).sql; echo '$$pghistory_sql$$;'; \
	  for f in $(ALL_UPDATES); do v=$${f#$(EXTENSION)--}; v=$${v%.sql}; \
	    printf "    v_updates := v_updates || ARRAY[ARRAY['%s', '%s', \$$pghistory_sql\$$" $${v%%--*} $${v##*--}; cat $(SQL_DIR)/$$f; echo '$$pghistory_sql$$]];'; done; \
	  sed '1,/^-- SCRIPTS$$/d' $<; } > $@

.PHONY: help test demo bench sql psql
help:
	@echo "make install      install the extension into PG_CONFIG's server (PGXS)"
	@echo "make installcheck run the pg_regress cases against a running server"
	@echo "make test         every test on PostgreSQL 14-18 (sets itself up)"
	@echo "make demo         track a table on a throwaway server and print its history"
	@echo "make bench        compare tracked writes with hand-written and untracked ones"
	@echo "make sql          the install, update, plain (psql -f) and pg_tle scripts in $(SQL_DIR)"
	@echo "make psql         a throwaway server with pghistory and a psql prompt on it (MAJOR=15)"

test:
	./tests/run

demo:
	./tests/run --demo

bench:
	./tests/run --bench $(ARGS)

psql:
	./tests/run --psql $(MAJOR)
