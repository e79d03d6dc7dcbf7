#!/usr/bin/env bash
# Wall time of `cargo anonmigrate lint` (every migration, text output) on a synthetic N-migration chain (default
# 1000). Each migration is realistic: a new table with an index, a column added to an earlier table, a foreign key
# added NOT VALID and validated later, and every tenth a non-transactional CREATE INDEX CONCURRENTLY; the chain has
# a few real findings, so the report path is timed too. No database is involved. Prints median, min and max over
# R runs (default 11). Usage: benches/lint.sh [N] [R]
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-1000}; runs=${2:-11}
cargo build --release --locked --quiet -p cargo-anonmigrate
bin=$PWD/target/release/cargo-anonmigrate
work=$(mktemp -d /tmp/anonmigrate-lint-bench-XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/migrations"
for i in $(seq 1 "$n"); do
  d=$(printf '%s/migrations/2024-01-01-%06d_m%04d' "$work" "$i" "$i")
  mkdir -p "$d"
  {
    printf 'CREATE TABLE t%04d (\n    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,\n' "$i"
    printf '    name text NOT NULL,\n    parent_id bigint,\n    created_at timestamptz NOT NULL DEFAULT now()\n);\n'
    printf 'CREATE INDEX t%04d_name_idx ON t%04d (name);\n' "$i" "$i"
    if [ "$i" -gt 1 ]; then
      p=$((i - 1))
      printf 'ALTER TABLE t%04d ADD COLUMN note text;\n' "$p"
      printf 'ALTER TABLE t%04d ADD CONSTRAINT t%04d_parent_fk FOREIGN KEY (parent_id) REFERENCES t%04d (id) NOT VALID;\n' "$p" "$p" "$i"
    fi
    if [ "$i" -gt 2 ]; then
      printf 'ALTER TABLE t%04d VALIDATE CONSTRAINT t%04d_parent_fk;\n' "$((i - 2))" "$((i - 2))"
    fi
    # A few real findings (ten of each kind in 1,000 migrations).
    if [ $((i % 100)) -eq 55 ]; then printf 'ALTER TABLE t%04d ALTER COLUMN parent_id SET NOT NULL;\n' "$((i - 1))"; fi
    if [ $((i % 100)) -eq 25 ]; then printf 'CREATE INDEX t%04d_parent_idx ON t%04d (parent_id);\n' "$((i - 1))" "$((i - 1))"; fi
  } > "$d/up.sql"
  printf 'DROP TABLE t%04d;\n' "$i" > "$d/down.sql"
done
# Every tenth migration is a non-transactional concurrent index instead (replacing its up.sql).
for i in $(seq 10 10 "$n"); do
  d=$(printf '%s/migrations/2024-01-01-%06d_m%04d' "$work" "$i" "$i")
  printf 'CREATE INDEX CONCURRENTLY t%04d_created_at_idx ON t%04d (created_at);\n' "$((i - 1))" "$((i - 1))" > "$d/up.sql"
  printf 'DROP INDEX CONCURRENTLY t%04d_created_at_idx;\n' "$((i - 1))" > "$d/down.sql"
  printf 'run_in_transaction = false\n' > "$d/metadata.toml"
done
cd "$work"
findings=$("$bin" lint 2>&1 >/dev/null | tail -1 || true)
echo "$findings"
times=()
for _ in $(seq 1 "$runs"); do
  start=$(date +%s%N)
  "$bin" lint >/dev/null 2>&1 || true
  end=$(date +%s%N)
  times+=($(( (end - start) / 1000000 )))
done
sorted=($(printf '%s\n' "${times[@]}" | sort -n))
echo "lint on a ${n}-migration chain, ${runs} runs: median ${sorted[$((runs / 2))]} ms, min ${sorted[0]} ms, max ${sorted[$((runs - 1))]} ms"
