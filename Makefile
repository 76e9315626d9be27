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
	extension/columns.sql \
	extension/identity.sql \
	extension/context.sql \
	extension/trackers.sql \
	extension/event_tables.sql \
	extension/expressions.sql \
	extension/triggers.sql \
	extension/registry.sql \
	extension/append_only.sql \
	extension/track.sql \
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
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

$(EXTENSION)--$(EXTVERSION).sql: $(PARTS) pghistory.control
	cat $(PARTS) > $@

$(EXTENSION)--%--$(EXTVERSION).sql: extension/$(EXTENSION)--%--$(EXTVERSION).sql $(CODE_PARTS) extension/update_end.sql
	cat $< $(CODE_PARTS) extension/update_end.sql > $@

.PHONY: help test demo bench
help:
	@echo "make install      install the extension into PG_CONFIG's server (PGXS)"
	@echo "make installcheck run the pg_regress cases against a running server"
	@echo "make test         every test on PostgreSQL 14-18 (sets itself up)"
	@echo "make demo         track a table on a throwaway server and print its history"
	@echo "make bench        compare tracked writes with hand-written and untracked ones"

test:
	./tests/run

demo:
	./tests/run --demo

bench:
	./tests/run --bench $(ARGS)
