"""The bench's report: medians, ratios to the floor, the bars, and bench/RESULTS.md.

Every full run is also appended to bench/runs.json (the last 10 are kept), so
RESULTS.md can state each bar over the last runs, not just one.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
import platform
import statistics
import subprocess
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
KEEP_RUNS = 10

WORKLOAD_TITLES = {
    "update": ("bulk UPDATE of {rows} rows, with context", "s"),
    "insert": ("bulk INSERT of {rows} rows, with context", "s"),
    "delete": ("bulk DELETE of {rows} rows, with context", "s"),
    "one_ctx": ("1-row UPDATE transactions, new context each", "tps"),
    "one_noctx": ("1-row UPDATE transactions, no context", "tps"),
}


@dataclasses.dataclass(frozen=True)
class Bar:
    key: str
    text: str
    op: str  # "<=", ">=", "<"
    limit: float

    def holds(self, value: float) -> bool:
        return {"<=": value <= self.limit, ">=": value >= self.limit, "<": value < self.limit}[self.op]


BARS = (
    Bar("update_pghistory_vs_dual", "bulk UPDATE: pghistory time / dual time", "<=", 1.15),
    Bar("update_django_statement_vs_pghistory", "bulk UPDATE: django statement-level time / pghistory time", ">=", 1.15),
    Bar("update_django_row_vs_pghistory", "bulk UPDATE: django row-level time / pghistory time", ">=", 3.0),
    # issue 15: against the stripped trigger (bench/variants/floor.sql), not the by-hand floor
    Bar("one_ctx_pghistory_vs_floor_pairing",
        "1-row UPDATE + context: pghistory tps / floor_pairing (stripped trigger) tps", ">=", 0.95),
    Bar("one_ctx_pghistory_vs_django_row", "1-row UPDATE + context: pghistory tps / django row-level tps", ">=", 1.0),
    Bar("bytes_pghistory_vs_django_row", "bytes per event: pghistory / django-pghistory (row level)", "<=", 1.10),
    Bar("lookup_median_ms", "object history over 2 x rows events: median ms of pghistory.events(tbl, id)", "<", 50.0),
)


def _run(cmd: list[str]) -> str:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=120).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def environment(build, args) -> dict[str, Any]:
    """The machine and the versions a run measures."""
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kb = int(next(l for l in Path("/proc/meminfo").read_text().splitlines() if l.startswith("MemTotal")).split()[1])
        mem = f"{kb / 1024 / 1024:.1f} GiB"
    except (OSError, StopIteration, ValueError):
        pass
    commit = _run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"])
    if _run(["git", "-C", str(ROOT), "status", "--porcelain", "--", "extension", "pghistory.control"]):
        commit += " (extension/ modified)"
    info: dict[str, Any] = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{os.cpu_count()} cores, {cpu}, {mem} memory, Linux {platform.release()}",
        "build": build.describe(),
        "commit": commit,
        "python": platform.python_version(),
    }
    if args.with_django:
        from targets import bench_python

        info["django"] = _run([str(bench_python()), "-c",
                               "import django, pghistory, pgtrigger; "
                               "print(f'django-pghistory {pghistory.__version__}, django-pgtrigger "
                               "{pgtrigger.__version__}, Django {django.__version__}')"])
    return info


@dataclasses.dataclass
class Results:
    args: Any
    info: dict[str, Any]
    targets: list
    samples: dict[tuple[str, str], list[float]]
    cpu_samples: dict[tuple[str, str], list[float]]
    lookup_ms: list[float]
    sizes: dict[str, dict[str, float]]
    shapes: dict[str, str]
    notes: list[str]
    seconds: float

    # -- numbers ------------------------------------------------------------------
    def median(self, workload: str, target: str, clock: str = "cpu") -> float | None:
        values = (self.cpu_samples if clock == "cpu" else self.samples).get((workload, target))
        return statistics.median(values) if values else None

    def ratio(self, workload: str, target: str, base: str, clock: str = "cpu") -> float | None:
        a, b = self.median(workload, target, clock), self.median(workload, base, clock)
        return a / b if a is not None and b else None

    def bar_values(self, clock: str = "cpu") -> dict[str, float | None]:
        """The bars' ratios, from server-CPU medians (clock="cpu") or wall-clock ones ("wall")."""
        def bytes_ratio() -> float | None:
            a, b = self.sizes.get("pghistory"), self.sizes.get("django_row")
            return a["bytes"] / b["bytes"] if a and b else None

        return {
            "update_pghistory_vs_dual": self.ratio("update", "pghistory", "dual", clock),
            "update_django_statement_vs_pghistory": self.ratio("update", "django_statement", "pghistory", clock),
            "update_django_row_vs_pghistory": self.ratio("update", "django_row", "pghistory", clock),
            "one_ctx_pghistory_vs_floor_pairing": self.ratio("one_ctx", "pghistory", "pghistory_floor_pairing", clock),
            "one_ctx_pghistory_vs_django_row": self.ratio("one_ctx", "pghistory", "django_row", clock),
            "bytes_pghistory_vs_django_row": bytes_ratio(),
            "lookup_median_ms": statistics.median(self.lookup_ms) if self.lookup_ms else None,
        }

    # -- text ---------------------------------------------------------------------
    def settings_line(self) -> str:
        a = self.args
        return (f"{a.rows} rows per table, {a.reps} repetitions (medians), pgbench {a.duration:g} s x "
                f"{a.clients} clients, -M {a.protocol}; {a.lookups} lookups")

    def table(self, clock: str = "cpu") -> str:
        """Markdown table: one row per workload, one column per target: median (ratio to dual).

        clock "cpu": seconds of server CPU per bulk statement, and transactions per
        server-CPU second for pgbench; "wall": seconds, and tps, as the client saw them.
        """
        names = [t.name for t in self.targets]
        lines = ["| workload | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
        for workload, (title, unit) in WORKLOAD_TITLES.items():
            if not any((workload, n) in self.samples for n in names):
                continue
            cells = []
            for n in names:
                m = self.median(workload, n, clock)
                if m is None:
                    cells.append("")
                    continue
                value = f"{m:.3f} s" if unit == "s" else f"{m:.0f} tps"
                r = self.ratio(workload, n, "dual", clock)
                cells.append(value + (f" ({r:.2f}x)" if r is not None and n != "dual" else ""))
            lines.append(f"| {title.format(rows=self.args.rows)} | " + " | ".join(cells) + " |")
        if self.sizes and clock == "cpu":
            cells = []
            base = self.sizes.get("dual", {}).get("bytes")
            for n in names:
                s = self.sizes.get(n)
                if not s:
                    cells.append("")
                    continue
                cells.append(f"{s['bytes']:.0f} B" + (f" ({s['bytes'] / base:.2f}x)" if base and n != "dual" else ""))
            lines.append("| bytes per event (table + indexes) | " + " | ".join(cells) + " |")
        return "\n".join(lines)

    def lookup_line(self) -> str:
        if not self.lookup_ms:
            return "object history: not measured" + (f" ({'; '.join(self.notes)})" if self.notes else "")
        ms = sorted(self.lookup_ms)
        p90 = ms[min(len(ms) - 1, int(len(ms) * 0.9))]
        return (f"object history (pghistory.events('item', id), {2 * self.args.rows} events): "
                f"median {statistics.median(ms):.2f} ms, p90 {p90:.2f} ms over {len(ms)} lookups")

    def storage_lines(self) -> list[str]:
        out = []
        for n, s in self.sizes.items():
            out.append(f"- {n}: {s['events']:.0f} events, {s['bytes']:.1f} B/event "
                       f"(heap {s['heap']:.1f}, indexes {s['indexes']:.1f}); {self.shapes.get(n, '')}")
        return out

    def bar_lines(self) -> list[str]:
        values, wall = self.bar_values("cpu"), self.bar_values("wall")
        out = []
        for bar in BARS:
            v, w = values[bar.key], wall[bar.key]
            if v is None:
                out.append(f"- n/a   {bar.text} {bar.op} {bar.limit:g}: not measured in this run")
                continue
            also = ""
            if w is not None and w != v:
                also = f"; wall clock {w:.2f} {'ok' if bar.holds(w) else 'short'}"
            out.append(f"- {'ok   ' if bar.holds(v) else 'SHORT'} {bar.text} = {v:.2f} ({bar.op} {bar.limit:g}{also})")
        return out

    def text(self) -> str:
        parts = [self.settings_line(), "", "server CPU (bulk: CPU seconds; 1-row: transactions per CPU second):",
                 self.table("cpu"), "", "wall clock (bulk: seconds; 1-row: tps):", self.table("wall"), "",
                 self.lookup_line()]
        if self.sizes:
            parts += ["", "storage:", *self.storage_lines()]
        if not self.args.smoke:
            parts += ["", "bars:", *self.bar_lines()]
        parts += ["", f"({self.seconds / 60:.1f} min)"]
        return "\n".join(parts)

    # -- bench/RESULTS.md and bench/runs.json ------------------------------------------
    def record(self, path: Path) -> None:
        runs_path = path.parent / "runs.json"
        try:
            runs = json.loads(runs_path.read_text())
        except (OSError, ValueError):
            runs = []
        if not self.args.smoke:
            runs.append({
                "date": self.info["date"],
                "commit": self.info["commit"],
                "server": self.info.get("server"),
                "rows": self.args.rows,
                "reps": self.args.reps,
                "bars": self.bar_values("cpu"),
                "bars_wall": self.bar_values("wall"),
                "samples_cpu": {f"{w}/{t}": v for (w, t), v in self.cpu_samples.items()},
                "samples_wall": {f"{w}/{t}": v for (w, t), v in self.samples.items()},
            })
            runs = runs[-KEEP_RUNS:]
            runs_path.write_text(json.dumps(runs, indent=1) + "\n")
        path.write_text(self.markdown(runs) + kept_sections(path))

    def runs_table(self, runs: list[dict[str, Any]]) -> list[str]:
        # runs comparable with this one: same sizes, same server build
        same = [r for r in runs if r.get("rows") == self.args.rows
                and r.get("server") == self.info.get("server")][-5:]
        if not same:
            return []
        head = "| bar | " + " | ".join(f"{r['date']} ({r['commit']})" for r in same) + " | median | |"
        lines = [head, "|---|" + "---:|" * len(same) + "---:|---|"]
        for bar in BARS:
            vals = [r["bars"].get(bar.key) for r in same]
            known = [v for v in vals if v is not None]
            med = statistics.median(known) if known else None
            verdict = "" if med is None else ("ok" if bar.holds(med) else "SHORT")
            lines.append(f"| {bar.text} {bar.op} {bar.limit:g} | "
                         + " | ".join("" if v is None else f"{v:.2f}" for v in vals)
                         + f" | {'' if med is None else f'{med:.2f}'} | {verdict} |")
        return lines

    def markdown(self, runs: list[dict[str, Any]]) -> str:
        i = self.info
        out = [
            "# Bench results",
            "",
            "Written by `make bench` (bench/run.py); do not edit by hand above the marker near the end",
            "(measurements made by hand go below it, and stay). Ratios, not absolute times, are the",
            "result: every target runs the same workloads in the same run, interleaved.",
            "",
            f"- date: {i['date']}; pghistory commit {i['commit']}, extension {i.get('pghistory', '?')}",
            f"- machine: {i['machine']}",
            f"- server: {i['build']}, fsync/synchronous_commit/"
            "full_page_writes off, shared_buffers 1GB, autovacuum off (VACUUM and CHECKPOINT between measurements)",
        ]
        if "django" in i:
            out.append(f"- django-pghistory: {i['django']} (bench virtualenv), Python {i['python']}")
        out += [
            f"- {self.settings_line()}; the whole run took {self.seconds / 60:.1f} min",
            "",
            "## Latest run: medians (ratio to dual)",
            "",
            "The ratio in brackets is to `dual`, the same write done by hand. The bars are judged on",
            "the server's CPU time (bulk: CPU seconds per statement, lower is better; 1-row: transactions",
            "per CPU second, higher is better), which other load on a shared machine hardly moves;",
            "the wall-clock table below it is what the client saw.",
            "",
            "Server CPU:",
            "",
            self.table("cpu"),
            "",
            "Wall clock (bulk: seconds; 1-row: tps):",
            "",
            self.table("wall"),
            "",
            self.lookup_line(),
            "",
            "Targets:",
            "",
            *[f"- `{t.name}`: {t.description}" for t in self.targets],
            "",
            "## Bars (latest run)",
            "",
            *self.bar_lines(),
        ]
        runs_lines = self.runs_table(runs)
        if runs_lines:
            out += ["", "## Bars over the last runs", "", *runs_lines]
        if self.sizes:
            out += ["", "## Storage", "", *self.storage_lines()]
        if self.notes:
            out += ["", "## Notes", "", *[f"- {n}" for n in self.notes]]
        out += [
            "",
            "## How it is measured",
            "",
            "- Every target is its own database with the same table `item` (id integer primary key, name, status,",
            "  amount numeric, updated_at), loaded with the same rows with triggers off.",
            "- Every transaction with a context starts with the same `SELECT set_config('pghistory.context_id', ...),",
            "  set_config('pghistory.context_metadata', ...)` on every target, plain and dual included: the",
            "  targets differ only in how the history gets written.",
            "- `dual` writes by hand what pghistory writes: one statement `WITH ctx AS (INSERT INTO context ...),",
            "  w AS (<the write> RETURNING item.*) INSERT INTO item_event ... SELECT ... FROM w CROSS JOIN ctx`, into",
            "  tables made with `LIKE ... INCLUDING ALL` from the ones pghistory makes (same columns, same indexes).",
            "- Bulk workloads: one transaction each (a new context, then the write), timed by the client; CHECKPOINT",
            "  before and VACUUM ANALYZE after, untimed. Each repetition runs a workload on every target, in an",
            "  order rotated every repetition.",
            "- Single-row workloads: pgbench with a custom script (BEGIN; set_config ...; UPDATE one random row; END)",
            "  on the server build's own pgbench.",
            "- Server CPU: utime+stime from /proc of the postmaster, its live children and the children it reaped",
            "  (pgbench's backends), before and after each measurement.",
            "- Bytes per event: pg_total_relation_size of the event table (after VACUUM) / its events at the end.",
            "",
        ]
        return "\n".join(out)


# Measurements made by hand (one-off runs, variants, other machines) live in RESULTS.md under
# this line; a recorded run rewrites everything above it and keeps the rest.
KEPT_MARKER = "<!-- Below: measured by hand, kept by make bench. Each section says how it was run. -->"


def kept_sections(path: Path) -> str:
    """The part of the results file at *path* from KEPT_MARKER on ("" when there is none)."""
    try:
        text = path.read_text()
    except OSError:
        return ""
    at = text.find(KEPT_MARKER)
    return "" if at < 0 else "\n" + text[at:]
