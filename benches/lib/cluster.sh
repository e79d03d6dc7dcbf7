# A throwaway PostgreSQL cluster for a benchmark script, sourced after it has set `bindir` (PostgreSQL binaries).
# `start_cluster NAME` makes /tmp/anonmigrate-NAME-bench.XXXXXX (as `work`), starts a server there (a random port,
# its Unix socket in `work`, no TCP, fsync off) and stops and removes it on exit; then `psql ARGS` talks to it and
# `cluster_url DB` is the URL of database DB on it. As root the server runs as `postgres`.
start_cluster() {
    work=$(mktemp -d "/tmp/anonmigrate-$1-bench.XXXXXX")
    chmod 755 "$work"
    as_pg=()
    if [ "$(id -u)" = 0 ]; then as_pg=(runuser -u postgres --); chown postgres "$work"; fi
    port=$((20000 + RANDOM % 20000))
    trap 'cleanup_cluster' EXIT
    trap 'exit 130' INT TERM
    "${as_pg[@]}" "$bindir/initdb" -D "$work/data" -U postgres --auth=trust --no-sync >/dev/null
    "${as_pg[@]}" "$bindir/pg_ctl" -D "$work/data" -l "$work/log" -w \
        -o "-k $work -p $port -c listen_addresses='' -c fsync=off -c max_locks_per_transaction=256" start >/dev/null
}
cleanup_cluster() { "${as_pg[@]}" "$bindir/pg_ctl" -D "$work/data" stop -m immediate >/dev/null 2>&1 || true; rm -rf "$work"; }
psql() { "$bindir/psql" -h "$work" -p "$port" -U postgres -v ON_ERROR_STOP=1 -qAt "$@"; }
cluster_url() { echo "postgres://postgres@$(printf '%s' "$work" | sed 's|/|%2F|g'):$port/$1"; }
