# pghistory: PGXS build, plus the project's own targets (make help).
EXTENSION  = pghistory
EXTVERSION = $(shell sed -n "s/^default_version *= *'\(.*\)'/\1/p" pghistory.control)

# The install script is assembled from the parts in extension/, in this
# order: each part may use only what the parts before it define.
PARTS = \
	extension/header.sql \
	extension/types.sql \
	extension/tables.sql \
	extension/util.sql \
	extension/context.sql \
	extension/trackers.sql \
	extension/generate.sql \
	extension/track.sql \
	extension/create_event.sql \
	extension/views.sql \
	extension/browsing.sql \
	extension/schema_changes.sql

DATA_built = $(EXTENSION)--$(EXTVERSION).sql
DATA       = $(wildcard extension/$(EXTENSION)--*--*.sql)
EXTRA_CLEAN = tests/results tests/regression.diffs tests/regression.out

# pg_regress: the quick SQL-only check (make installcheck against a running server)
REGRESS      = $(patsubst tests/sql/%.sql,%,$(sort $(wildcard tests/sql/*.sql)))
REGRESS_OPTS = --inputdir=tests --outputdir=tests --load-extension=plpgsql

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

$(EXTENSION)--$(EXTVERSION).sql: $(PARTS) pghistory.control
	cat $(PARTS) > $@

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
