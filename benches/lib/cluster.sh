# A throwaway PostgreSQL cluster for the benchmark scripts, sourced once `bindir` names the PostgreSQL binaries.
# `start_cluster NAME [SERVER OPTION...]` makes a private directory ${TMPDIR:-/tmp}/anonmigrate-NAME-XXXXXX (`work`),
# starts a server there (`pg` its directory, `sock` its Unix socket directory: no TCP, fsync off, the options
# given appended, its log in $pg/server.log) and stops and removes everything on exit. As root the server runs as
# ANONMIGRATE_PG_USER (default postgres). `cluster_url DB` is the URL of database DB on it.
start_cluster() {
    local name=$1
    shift
    work=$(mktemp -d "${TMPDIR:-/tmp}/anonmigrate-$name-XXXXXX")
    chmod 755 "$work" # as root the server runs as another user, which must reach the socket directory
    pg=$work/pg sock=$work/pg/sock
    mkdir -p "$sock"
    as_server=()
    if [ "$(id -u)" = 0 ]; then
        chown -R "${ANONMIGRATE_PG_USER:-postgres}:" "$pg"
        as_server=(runuser -u "${ANONMIGRATE_PG_USER:-postgres}" --)
    fi
    trap stop_cluster EXIT
    trap 'exit 130' INT TERM
    "${as_server[@]}" "$bindir/initdb" -D "$pg/data" -U postgres --auth=trust --encoding=UTF8 --locale=C --no-sync \
        >"$work/initdb.log" 2>&1 || { cat "$work/initdb.log" >&2; echo "$0: initdb failed" >&2; exit 1; }
    "${as_server[@]}" "$bindir/pg_ctl" start -w -t 60 -D "$pg/data" -l "$pg/server.log" \
        -o "-c listen_addresses='' -k $sock -c fsync=off $*" >/dev/null \
        || { tail -20 "$pg/server.log" >&2; echo "$0: pg_ctl start failed" >&2; exit 1; }
}
stop_cluster() {
    if [ -f "$pg/data/postmaster.pid" ]; then
        "${as_server[@]}" "$bindir/pg_ctl" stop -D "$pg/data" -m immediate >/dev/null 2>&1 || true
    fi
    rm -rf "$work"
}
cluster_url() { printf 'postgres://postgres@localhost/%s?host=%s' "$1" "$sock"; }
