#!/usr/bin/env bash
# Wall time of `cargo anonmigrate status` with nothing pending on a synthetic N-migration chain (default 200),
# against a throwaway managed server. Prints median, min and max over R runs (default 21).
# Usage: benches/status.sh [N] [R]
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-200}; runs=${2:-21}
cargo build --release --locked --quiet -p cargo-anonmigrate
bin=$PWD/target/release/cargo-anonmigrate
work=$(mktemp -d /tmp/anonmigrate-bench-XXXXXX)
chmod 755 "$work"  # the server may run as another OS user (root cannot run PostgreSQL)
export ANONMIGRATE_SERVER_DIR=$work/server
trap '"$bin" --migrations-dir "$work/migrations" server stop >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
mkdir -p "$work/migrations"
for i in $(seq 1 "$n"); do
  d=$(printf '%s/migrations/2024-01-01-%06d_m%04d' "$work" "$i" "$i")
  mkdir -p "$d"
  printf 'CREATE TABLE t%04d (id bigint PRIMARY KEY, name text NOT NULL);\n' "$i" > "$d/up.sql"
  printf 'DROP TABLE t%04d;\n' "$i" > "$d/down.sql"
done
cd "$work"
"$bin" lock >/dev/null
"$bin" run >/dev/null
times=()
for _ in $(seq 1 "$runs"); do
  start=$(date +%s%N)
  "$bin" status --exit-code >/dev/null 2>&1
  end=$(date +%s%N)
  times+=($(( (end - start) / 1000000 )))
done
sorted=($(printf '%s\n' "${times[@]}" | sort -n))
echo "status on a ${n}-migration chain, ${runs} runs: median ${sorted[$((runs / 2))]} ms, min ${sorted[0]} ms, max ${sorted[$((runs - 1))]} ms"
