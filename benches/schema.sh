#!/usr/bin/env bash
# `cargo anonmigrate schema` end to end on a synthetic chain of N migrations creating N tables (default 1,000:
# mixed column types, a foreign key per table, some enum and pgvector columns), side by side with diesel_cli doing
# the same job on the same throwaway server: create a database, `diesel migration run`, `diesel print-schema`.
# Both read the same diesel.toml, so the script also checks that the two schema files are byte-identical.
#
# Usage: benches/schema.sh [--tables N] [--reps N] [--diesel-reps N]
#   --tables N       migrations = tables (default 1000)
#   --reps N         runs of `cargo anonmigrate schema` (default 3); the median is reported
#   --diesel-reps N  runs of the diesel_cli job (default 1; its print-schema alone takes tens of seconds)
# Environment:
#   ANONMIGRATE_BIN       cargo-anonmigrate binary (default: built here with --release)
#   DIESEL                diesel_cli 2.3 binary (default /var/cache/anonmigrate-peers/bin/diesel; install with
#                         cargo install diesel_cli --version ^2.3 --no-default-features --features postgres
#                           --root /var/cache/anonmigrate-peers); without it only anonmigrate is measured
#   ANONMIGRATE_PG_BINDIR PostgreSQL + pgvector binaries (default: `cargo anonmigrate server install`)
# `--timings` makes `schema` print its phases (replay, catalog read, render) to stderr; they are reported too.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
tables=1000 reps=3 diesel_reps=1
while [ $# -gt 0 ]; do
    case $1 in
        --tables) tables=$2; shift ;;
        --reps) reps=$2; shift ;;
        --diesel-reps) diesel_reps=$2; shift ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "benches/schema.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done

cd "$repo"
if [ -z "${ANONMIGRATE_BIN:-}" ]; then
    echo "building cargo-anonmigrate (release)" >&2
    cargo build --release -q -p cargo-anonmigrate
    ANONMIGRATE_BIN=$(cargo metadata --format-version 1 --no-deps | sed 's/.*"target_directory":"\([^"]*\)".*/\1/')/release/cargo-anonmigrate
fi
bin=$ANONMIGRATE_BIN
diesel=${DIESEL:-/var/cache/anonmigrate-peers/bin/diesel}
bindir=${ANONMIGRATE_PG_BINDIR:-$("$bin" server install | sed -n 's/.* ready in //p')}
[ -x "$bindir/postgres" ] || { echo "no PostgreSQL binaries in '$bindir'" >&2; exit 1; }

# --- a throwaway cluster ------------------------------------------------------------------------------------------
. "$repo/benches/lib/cluster.sh"
start_cluster schema-bench -c max_locks_per_transaction=256
psql() { "$bindir/psql" -h "$sock" -U postgres -v ON_ERROR_STOP=1 -qAt "$@"; }
url() { cluster_url "$1"; }

# --- the synthetic chain --------------------------------------------------------------------------------------------
ws=$work/ws
mkdir -p "$ws/migrations"
python3 - "$ws/migrations" "$tables" <<'EOF'
import os, sys
root, n = sys.argv[1], int(sys.argv[2])
for i in range(1, n + 1):
    d = os.path.join(root, f"{i:014d}_table_{i}")
    os.makedirs(d)
    up = []
    if i == 1:
        up.append("CREATE EXTENSION IF NOT EXISTS vector;")
        for e in range(5):
            up.append(f"CREATE TYPE mood_{e} AS ENUM ('low', 'mid', 'high');")
    cols = ["id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY"]
    if i > 1:
        cols.append(f"parent_id BIGINT REFERENCES table_{i - 1} (id)")
    cols += ["name VARCHAR(100) NOT NULL", "body TEXT", "score DOUBLE PRECISION", "amount NUMERIC(12, 2)",
             "active BOOLEAN NOT NULL DEFAULT true", "tags TEXT[]", "created_at TIMESTAMPTZ NOT NULL DEFAULT now()",
             "payload JSONB", "ref UUID"]
    if i % 10 == 0:
        cols.append(f"mood mood_{i % 5} NOT NULL DEFAULT 'mid'")
    if i % 20 == 0:
        cols.append("embedding vector(3)")
    up.append(f"CREATE TABLE table_{i} (\n    " + ",\n    ".join(cols) + "\n);")
    down = [f"DROP TABLE table_{i};"]
    if i == 1:
        down += [f"DROP TYPE mood_{e};" for e in range(5)]
    open(os.path.join(d, "up.sql"), "w").write("\n".join(up) + "\n")
    open(os.path.join(d, "down.sql"), "w").write("\n".join(down) + "\n")
EOF
# One diesel.toml for both tools, so their outputs must be identical.
printf '[print_schema]\nfile = "schema.rs"\nimport_types = ["diesel::sql_types::*", "pgvector::sql_types::*"]\nexcept_custom_type_definitions = ["Vector"]\n\n[migrations_directory]\ndir = "migrations"\n' >"$ws/diesel.toml"
# diesel's `migration run` would regenerate schema.rs itself; its run uses a config without `file`, so
# print-schema is timed on its own.
printf '[migrations_directory]\ndir = "%s/migrations"\n' "$ws" >"$work/diesel-run.toml"
(cd "$ws" && "$bin" lock >/dev/null)

now() { date +%s%N; }
ms() { echo $(( ($2 - $1) / 1000000 )); }
median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

# --- anonmigrate ------------------------------------------------------------------------------------------------------
echo "chain: $tables migrations, $tables tables; server: PostgreSQL $(psql -d postgres -c 'SHOW server_version') from $bindir" >&2
: >"$work/anon.txt"
for r in $(seq "$reps"); do
    rm -f "$ws/schema.rs"
    t0=$(now)
    (cd "$ws" && "$bin" --database-url "$(url postgres)" schema --timings >/dev/null 2>"$work/anon.err") || { cat "$work/anon.err" >&2; exit 1; }
    t1=$(now)
    line=$(grep '^timings:' "$work/anon.err")
    replay=$(sed 's/.*replay \([0-9]*\) ms.*/\1/' <<<"$line")
    catalog=$(sed 's/.*catalog read \([0-9]*\) ms.*/\1/' <<<"$line")
    render=$(sed 's/.*render \([0-9]*\) ms.*/\1/' <<<"$line")
    echo "$(ms "$t0" "$t1") $replay $catalog $render" >>"$work/anon.txt"
    echo "  anonmigrate run $r: $(ms "$t0" "$t1") ms ($line)" >&2
done
left=$(psql -d postgres -c "SELECT count(*) FROM pg_database WHERE datname LIKE 'anonmigrate\\_scratch\\_%'")
anon_total=$(cut -d' ' -f1 "$work/anon.txt" | median)
anon_replay=$(cut -d' ' -f2 "$work/anon.txt" | median)
anon_catalog=$(cut -d' ' -f3 "$work/anon.txt" | median)
anon_render=$(cut -d' ' -f4 "$work/anon.txt" | median)
cp "$ws/schema.rs" "$work/anonmigrate.rs"

# --- diesel_cli -------------------------------------------------------------------------------------------------------
have_diesel=0
if [ -x "$diesel" ]; then
    have_diesel=1
    : >"$work/diesel.txt"
    for r in $(seq "$diesel_reps"); do
        db="diesel_bench_$r"
        t0=$(now)
        psql -d postgres -c "CREATE DATABASE $db"
        t1=$(now)
        (cd "$ws" && "$diesel" migration run --config-file "$work/diesel-run.toml" --database-url "$(url "$db")" >/dev/null)
        t2=$(now)
        (cd "$ws" && "$diesel" print-schema --config-file "$ws/diesel.toml" --database-url "$(url "$db")" >"$work/diesel.rs")
        t3=$(now)
        echo "$(ms "$t0" "$t3") $(ms "$t0" "$t1") $(ms "$t1" "$t2") $(ms "$t2" "$t3")" >>"$work/diesel.txt"
        echo "  diesel_cli run $r: $(ms "$t0" "$t3") ms (createdb $(ms "$t0" "$t1") ms, migration run $(ms "$t1" "$t2") ms, print-schema $(ms "$t2" "$t3") ms)" >&2
        psql -d postgres -c "DROP DATABASE $db"
    done
    d_total=$(cut -d' ' -f1 "$work/diesel.txt" | median)
    d_create=$(cut -d' ' -f2 "$work/diesel.txt" | median)
    d_run=$(cut -d' ' -f3 "$work/diesel.txt" | median)
    d_print=$(cut -d' ' -f4 "$work/diesel.txt" | median)
fi

# --- report -------------------------------------------------------------------------------------------------------------
echo
echo "schema.rs from a $tables-migration, $tables-table chain (median of $reps / $diesel_reps runs, ms)"
printf '  %-58s %8s\n' "anonmigrate schema, end to end" "$anon_total"
printf '  %-58s %8s\n' "  replay (scratch database + all migrations)" "$anon_replay"
printf '  %-58s %8s\n' "  catalog read (5 queries)" "$anon_catalog"
printf '  %-58s %8s\n' "  render" "$anon_render"
printf '  %-58s %8s\n' "  catalog read + render" "$((anon_catalog + anon_render))"
if [ "$have_diesel" = 1 ]; then
    printf '  %-58s %8s\n' "diesel_cli: create database + migration run + print-schema" "$d_total"
    printf '  %-58s %8s\n' "  create database" "$d_create"
    printf '  %-58s %8s\n' "  diesel migration run" "$d_run"
    printf '  %-58s %8s\n' "  diesel print-schema" "$d_print"
    echo "  speed-up, whole job: $(awk -v d="$d_total" -v a="$anon_total" 'BEGIN { printf "%.1fx", d / a }')"
    echo "  speed-up, catalog read + render vs print-schema: $(awk -v d="$d_print" -v a="$((anon_catalog + anon_render))" 'BEGIN { printf "%.0fx", d / (a > 0 ? a : 1) }')"
    if cmp -s "$work/anonmigrate.rs" "$work/diesel.rs"; then
        echo "  outputs: byte-identical ($(wc -l <"$work/diesel.rs") lines)"
    else
        echo "  outputs: DIFFERENT"; diff "$work/diesel.rs" "$work/anonmigrate.rs" | head -20; exit 1
    fi
else
    echo "  diesel_cli not found at $diesel: not compared"
fi
echo "  scratch databases left behind: $left"
[ "$left" = 0 ]
