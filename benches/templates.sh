#!/usr/bin/env bash
# Replays at template speed (issue 14), on a throwaway cluster and synthetic chains shaped like benches/run's
# workload 1 (three in four migrations create a table, one in three of those with a foreign key to the previous
# table; the fourth adds a column), each with a correct down.sql:
#   1. `check` (down.sql pass + revert all) on a 300-migration chain against a cold replay of the same chain
#      (`schema --stdout` with ANONMIGRATE_TEMPLATE_CACHE=0); again with one migration in ten seeding a row (those
#      run up.sql a second time in the check);
#   2. `schema --stdout` after appending one migration to a 300- and a 1,000-migration chain whose templates exist
#      (the first repetition appends one, each later one edits it, as while writing a migration), against the cold
#      replay; twice: back to back, and --append-pause seconds apart (default 2: a developer editing between runs,
#      which gives the copy each replay starts for the next one time to finish);
#   3. a fresh migrated test database (`anonmigrate_core::testdb::TestDatabase`) for the Anonymous Chat chain and
#      the 1,000-migration chain (anonmigrate-core/benches/testdb.rs), two ways: (a) claimed from a warm pool of
#      spare copies (the refill finished before each claim: what a test sees when spares are ready) and (b) back to
#      back, every database held, so the pool drains and the rate is what copying the template sustains; against one
#      template copy made on demand (a test database before the spares) and replaying the chain into a new database.
#      ANONMIGRATE_TEST_SPARES sets the pool size (default 4).
# Every figure is the median (min-max) wall time of whole processes, except 3 (in process), with the load average
# printed before each part (other work on the machine inflates every figure).
#
# Usage: benches/templates.sh [--reps N] [--check-size N] [--sizes "300 1000"] [--append-pause SECONDS]
# Environment: ANONMIGRATE_BIN (default: built here with --release), ANONMIGRATE_PG_BINDIR (default: `server install`).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
reps=5 check_size=300 sizes="300 1000" append_pause=2
while [ $# -gt 0 ]; do
    case $1 in
        --reps) reps=$2; shift ;;
        --check-size) check_size=$2; shift ;;
        --sizes) sizes=$2; shift ;;
        --append-pause) append_pause=$2; shift ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "benches/templates.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done

cd "$repo"
target_dir=$(cargo metadata --format-version 1 --no-deps | sed 's/.*"target_directory":"\([^"]*\)".*/\1/')
if [ -z "${ANONMIGRATE_BIN:-}" ]; then
    echo "building cargo-anonmigrate (release)" >&2
    cargo build --release --locked -q -p cargo-anonmigrate
    ANONMIGRATE_BIN=$target_dir/release/cargo-anonmigrate
fi
bin=$ANONMIGRATE_BIN
echo "building the test-database bench (release)" >&2
testdb_bench=$(cargo bench --locked -q -p anonmigrate-core --bench testdb --no-run --message-format=json 2>/dev/null \
    | sed -n 's/.*"executable":"\([^"]*testdb[^"]*\)".*/\1/p' | tail -1)
bindir=${ANONMIGRATE_PG_BINDIR:-$("$bin" anonmigrate server install | sed -n 's/.* ready in //p')}
[ -x "$bindir/postgres" ] || { echo "no PostgreSQL binaries in '$bindir'" >&2; exit 1; }

# --- a throwaway cluster ------------------------------------------------------------------------------------------
. "$repo/benches/lib/cluster.sh"
start_cluster templates-bench -c max_locks_per_transaction=256
psql() { "$bindir/psql" -h "$sock" -U postgres -v ON_ERROR_STOP=1 -qAt "$@"; }
url=$(cluster_url postgres)

now() { date +%s%N; }
stats() { sort -n | awk '{ a[NR] = $1 } END { printf "%d ms (%d-%d)", a[int((NR + 1) / 2)], a[1], a[NR] }'; }
median_of() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
# timed FILE CMD...: appends the wall time in ms of CMD (run in the workspace) to FILE
timed() {
    local file=$1; shift
    local t0 t1
    t0=$(now)
    "$@" >/dev/null 2>"$work/last.err" || { cat "$work/last.err" >&2; exit 1; }
    t1=$(now)
    echo $(( (t1 - t0) / 1000000 )) >>"$file"
}

# chain DIR N [DATA]: the synthetic chain; with DATA, one migration in ten seeds a row instead (INSERT, DELETE)
chain() {
    mkdir -p "$1/migrations"
    printf '[workspace]\nresolver = "2"\n' >"$1/Cargo.toml"
    python3 - "$1/migrations" "$2" "${3:-}" <<'EOF'
import os, sys
root, n, data = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "data"
last = None
for i in range(1, n + 1):
    d = os.path.join(root, f"{i:014d}_m{i}")
    os.makedirs(d)
    if data and i % 10 == 5 and last:
        up, down = f"INSERT INTO {last} (id, name) VALUES ({i}, 'seed');", f"DELETE FROM {last} WHERE id = {i};"
    elif i % 4 == 0 and last:
        up, down = f"ALTER TABLE {last} ADD COLUMN extra_{i} TEXT;", f"ALTER TABLE {last} DROP COLUMN extra_{i};"
    else:
        fk = f", parent_id BIGINT REFERENCES {last} (id)" if last and i % 3 == 0 else ""
        up = f"CREATE TABLE t_{i} (id BIGINT PRIMARY KEY, name TEXT NOT NULL, n INTEGER, created_at TIMESTAMPTZ NOT NULL DEFAULT now(){fk});"
        down = f"DROP TABLE t_{i};"
        last = f"t_{i}"
    open(os.path.join(d, "up.sql"), "w").write(up + "\n")
    open(os.path.join(d, "down.sql"), "w").write(down + "\n")
EOF
    (cd "$1" && "$bin" anonmigrate lock >/dev/null)
}

anon() { (cd "$ws" && "$bin" anonmigrate --database-url "$url" "$@"); }
cold() { (cd "$ws" && ANONMIGRATE_TEMPLATE_CACHE=0 "$bin" anonmigrate --database-url "$url" "$@"); }

echo "server: PostgreSQL $(psql -d postgres -c 'SHOW server_version'); binary: $bin; $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
for n in $(printf '%s\n' $check_size $sizes | sort -nu); do
    ws=$work/ws_$n
    chain "$ws" "$n"
    : >"$work/cold_$n"
    for _ in $(seq "$reps"); do timed "$work/cold_$n" cold schema --stdout; done
    echo "$n migrations: cold replay (schema --stdout, ANONMIGRATE_TEMPLATE_CACHE=0): $(stats <"$work/cold_$n"); load $(cut -d' ' -f1-3 /proc/loadavg)"

    if [ "$n" = "$check_size" ]; then
        # Paired with a cold replay each time (this machine's disk speed drifts by 2x within minutes): the ratio is
        # the median of the pairs' ratios.
        : >"$work/check_$n"; : >"$work/pair_cold_$n"
        for _ in $(seq "$reps"); do
            timed "$work/pair_cold_$n" cold schema --stdout
            timed "$work/check_$n" anon check --no-lint --no-schema-check
        done
        c=$(median_of <"$work/check_$n") r=$(median_of <"$work/cold_$n")
        paired=$(paste "$work/check_$n" "$work/pair_cold_$n" | awk '{ printf "%.3f\n", $1 / $2 }' | sort -n | awk '{ a[NR] = $1 } END { printf "%.2fx (%.2fx-%.2fx)", a[int((NR + 1) / 2)], a[1], a[NR] }')
        echo "$n migrations: check (down.sql pass + revert all): $(stats <"$work/check_$n") = $(awk -v c="$c" -v r="$r" 'BEGIN { printf "%.2fx", c / r }') the cold replay; paired with a cold replay run just before each: $paired (target <= 3x)"
        # The same shape with one migration in ten writing a row: those run up.sql again (and down.sql once more).
        wsd=$work/ws_${n}_data
        chain "$wsd" "$n" data
        : >"$work/cold_${n}_data" ; : >"$work/check_${n}_data"
        for _ in $(seq "$reps"); do
            (ws=$wsd; timed "$work/cold_${n}_data" cold schema --stdout)
            (ws=$wsd; timed "$work/check_${n}_data" anon check --no-lint --no-schema-check)
        done
        paired=$(paste "$work/check_${n}_data" "$work/cold_${n}_data" | awk '{ printf "%.3f\n", $1 / $2 }' | sort -n | awk '{ a[NR] = $1 } END { printf "%.2fx (%.2fx-%.2fx)", a[int((NR + 1) / 2)], a[1], a[NR] }')
        echo "$n migrations, one in ten writing rows: check: $(stats <"$work/check_${n}_data"), its cold replay $(stats <"$work/cold_${n}_data"); paired: $paired"
    fi

    if printf '%s\n' $sizes | grep -qx "$n"; then
        for pause in 0 "$append_pause"; do
            anon cache clear >/dev/null
            anon schema --stdout >/dev/null 2>&1   # builds the templates of the chain as it is
            : >"$work/append_$n"
            advance=0
            for r in $(seq "$reps"); do
                rm -rf "$ws/migrations/99999999999999_appended"
                mkdir -p "$ws/migrations/99999999999999_appended"
                echo "CREATE TABLE appended_$r (id BIGINT PRIMARY KEY, note TEXT);" >"$ws/migrations/99999999999999_appended/up.sql"
                echo "DROP TABLE appended_$r;" >"$ws/migrations/99999999999999_appended/down.sql"
                sleep "$pause"
                timed "$work/append_$n" anon schema --stdout --timings
                grep -q "($n of $((n + 1)) migration(s) from a template copy" "$work/last.err" \
                    || { echo "the appended replay did not copy the template:" >&2; cat "$work/last.err" >&2; exit 1; }
                if grep -q "made in advance" "$work/last.err"; then advance=$((advance + 1)); fi
            done
            rm -rf "$ws/migrations/99999999999999_appended"
            a=$(median_of <"$work/append_$n") r=$(median_of <"$work/cold_$n")
            if [ "$pause" = 0 ]; then how="back to back"; else how="${pause} s apart"; fi
            first=$(head -1 "$work/append_$n")
            echo "$n migrations: schema --stdout after appending one ($how; $advance of $reps on a copy made in advance): $(stats <"$work/append_$n") = $(awk -v a="$a" -v r="$r" 'BEGIN { printf "%.2fx", a / r }') the cold replay; the first (the append itself, no copy waiting): $first ms = $(awk -v a="$first" -v r="$r" 'BEGIN { printf "%.2fx", a / r }'); load $(cut -d' ' -f1-3 /proc/loadavg)"
        done
    fi
done

echo "test databases (in process; median (min-max)); load $(cut -d' ' -f1-3 /proc/loadavg):"
echo "  Anonymous Chat chain:"
"$testdb_bench" "$url" "$repo/migrations" 21 | sed 's/^/    /'
largest=$(printf '%s\n' $sizes | sort -n | tail -1)
echo "  synthetic chain (load $(cut -d' ' -f1-3 /proc/loadavg)):"
"$testdb_bench" "$url" "$work/ws_$largest/migrations" 21 | sed 's/^/    /'
left=$(psql -d postgres -c "SELECT count(*) FROM pg_database WHERE datname LIKE 'anonmigrate\\_scratch\\_%' OR datname LIKE 'anonmigrate\\_test\\_%'")
echo "scratch and test databases left behind: $left"
[ "$left" = 0 ]
spares=$(psql -d postgres -c "SELECT count(*) FROM pg_database WHERE datname LIKE 'anonmigrate\\_spare\\_%'")
echo "spare copies waiting (at most ${ANONMIGRATE_TEST_SPARES:-4} per chain): $spares"
