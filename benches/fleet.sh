#!/usr/bin/env bash
# `fleet run` of the Anonymous Chat chain over N fresh tenant databases of one cluster (default 1,000), at
# --jobs 1, 2, 4 and 8, against a serial shell loop of diesel_cli (`diesel migration run` per database) and of
# single `cargo anonmigrate run`s over the same databases. Every round starts from N freshly created, empty
# databases (created once, emptied in place between rounds); each figure is the wall time of the whole round and the peak RSS of its largest process
# (/usr/bin/time -v). Figures in BENCHMARKS.md.
# Usage: benches/fleet.sh [N] [ROUNDS]   (DIESEL=/path/to/diesel, else /work/peers/bin/diesel or diesel on PATH)
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-1000}; rounds=${2:-1}
repo=$PWD
cargo build --release --locked --quiet -p cargo-anonmigrate
bin=$repo/target/release/cargo-anonmigrate
diesel=${DIESEL:-$(command -v /work/peers/bin/diesel || command -v diesel || true)}
work=$(mktemp -d /tmp/anonmigrate-fleet-bench-XXXXXX)
chmod 755 "$work"  # the server may run as another OS user (root cannot run PostgreSQL)
export ANONMIGRATE_SERVER_DIR=$work/server
trap 'cd "$work" && "$bin" server stop >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
cp -r "$repo/migrations" "$work/migrations"
printf '[workspace]\nresolver = "2"\n' > "$work/Cargo.toml"
cd "$work"
"$bin" server start >/dev/null
dev_url=$("$bin" server url)
psql=$("$bin" server status | sed -n 's/^binaries: \(.*\) (.*)$/\1/p')/psql
server=${dev_url%%\?*}; server=${server%/*}; query=${dev_url#*\?}
url_of() { printf '%s/%s?%s' "$server" "$1" "$query"; }
admin=$(url_of postgres)
# Durability off for every tool alike, as in benches/run: the figures are about the tools, not the disk.
"$psql" -X -q -d "$admin" -c "ALTER SYSTEM SET fsync = off" -c "ALTER SYSTEM SET synchronous_commit = off" \
  -c "ALTER SYSTEM SET full_page_writes = off" -c "SELECT pg_reload_conf()" >/dev/null

created=no
fresh() {  # tenant_0001 … tenant_N, empty: created once from template0, later emptied in place (a few ms each,
           # where CREATE DATABASE copies template0's 7 MB through the WAL every time)
  if [ "$created" = no ]; then
    { echo "SET client_min_messages = warning;"
      for i in $(seq -f '%04g' 1 "$n"); do echo "CREATE DATABASE tenant_$i TEMPLATE template0;"; done; } |
      "$psql" -X -q -v ON_ERROR_STOP=1 -d "$admin" >/dev/null
    created=yes
    return
  fi
  for i in $(seq -f '%04g' 1 "$n"); do
    printf '\\connect %s\nSET client_min_messages = warning;\nDROP SCHEMA public CASCADE;\nCREATE SCHEMA public;\nDROP EXTENSION IF EXISTS vector;\n' "$(url_of "tenant_$i")"
  done | "$psql" -X -q -v ON_ERROR_STOP=1 -d "$admin" >/dev/null
  # Emptied means the same as new: no table, type or extension left (plpgsql aside).
  local left
  left=$("$psql" -X -qAt -d "$(url_of tenant_0001)" -c "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public'")
  [ "$left" = 0 ] || { echo "tenant_0001 was not emptied"; exit 1; }
}

measure() {  # label, command...: wall ms and max RSS of one round
  local label=$1; shift
  fresh
  local log=$work/time.log
  local start end
  start=$(date +%s%N)
  /usr/bin/time -v -o "$log" "$@" >/dev/null 2>"$work/stderr.log" || { echo "$label failed:"; tail -5 "$work/stderr.log"; exit 1; }
  end=$(date +%s%N)
  local ms=$(( (end - start) / 1000000 ))
  local rss=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$log")
  local heads
  heads=$("$psql" -X -qAt -d "$admin" -c "SELECT count(*) FROM pg_database WHERE datname LIKE 'tenant\_%'")
  printf '%-40s %8d ms  %6.1f ms/db  peak RSS %6.1f MiB  (%s databases)\n' "$label" "$ms" "$(echo "$ms / $n" | bc -l)" "$(echo "$rss / 1024" | bc -l)" "$heads"
}

serial_anonmigrate() { for i in $(seq -f '%04g' 1 "$n"); do "$bin" run --no-schema --database-url "$(url_of "tenant_$i")" >/dev/null 2>&1; done; }
serial_diesel() { for i in $(seq -f '%04g' 1 "$n"); do "$diesel" migration run --migration-dir "$work/migrations" --database-url "$(url_of "tenant_$i")" >/dev/null; done; }
export -f serial_anonmigrate serial_diesel url_of
export n bin diesel work admin server query

echo "fleet benchmark: Anonymous Chat chain (5 migrations, one CREATE INDEX CONCURRENTLY), $n databases, $(nproc) cores"
for round in $(seq 1 "$rounds"); do
  [ "$rounds" -gt 1 ] && echo "round $round"
  if [ -n "$diesel" ]; then measure "serial loop: diesel migration run" bash -c serial_diesel; else echo "diesel_cli not found: its loop is skipped"; fi
  measure "serial loop: cargo anonmigrate run" bash -c serial_anonmigrate
  for jobs in 1 2 4 8; do
    measure "fleet run --jobs $jobs" "$bin" fleet run --databases-like 'tenant\_%' --jobs "$jobs" --database-url "$admin"
  done
done
# Every database is at head after the last round.
"$psql" -X -qAt -d "$(url_of "tenant_$(printf '%04d' "$n")")" -c "SELECT max(version) FROM __diesel_schema_migrations"
