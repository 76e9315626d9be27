"""psql users see what is public: every public function and view of the extension has a comment.

`\\df+ pghistory.*` and `\\dv+ pghistory.*` show them.  Public means a member
of the extension in schema pghistory whose name does not start with an
underscore.
"""

from __future__ import annotations

import pytest

# Public functions whose files other helpers of issue 16 were reshaping when
# this test landed; their comments are theirs to add (then this list empties).
NOT_YET = {
    "pghistory.clear_context()": "extension/context.sql",
    "pghistory.current_context_id()": "extension/context.sql",
    "pghistory.set_context(jsonb,boolean)": "extension/context.sql",
    "pghistory.install_event_triggers()": "extension/event_triggers.sql",
    "pghistory.track(regclass,pghistory.tracker[],text[],text[],text,text,text,boolean,boolean)": "extension/track.sql",
    "pghistory.untrack(regclass,boolean)": "extension/track.sql",
}


def test_every_public_function_and_view_has_a_comment(conn):
    public = conn.execute("""
        SELECT CASE d.classid WHEN 'pg_proc'::regclass THEN d.objid::regprocedure::text
                              ELSE d.objid::regclass::text END,
               obj_description(d.objid, d.classid::regclass::name)
          FROM pg_depend AS d
          LEFT JOIN pg_proc AS p ON d.classid = 'pg_proc'::regclass AND p.oid = d.objid
          LEFT JOIN pg_class AS c ON d.classid = 'pg_class'::regclass AND c.oid = d.objid
         WHERE d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e'
           AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'pghistory')
           AND (p.proname NOT LIKE '\\_%' OR c.relkind = 'v' AND c.relname NOT LIKE '\\_%')
         ORDER BY 1""").fetchall()
    names = [name for name, _ in public]
    assert "pghistory.events(regclass,text,timestamp with time zone,timestamp with time zone,text[],uuid,text[])" in names
    assert "pghistory.tracking" in names and "pghistory.aggregate_events" in names
    for name, comment in public:
        assert comment is None or comment.startswith("pghistory: "), (name, comment)
    missing = sorted(name for name, comment in public if not comment)
    assert [name for name in missing if name not in NOT_YET] == []
    if missing:
        pytest.xfail("no comment yet (issue 16, other files): " + ", ".join(missing))
