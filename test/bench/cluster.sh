# test/bench/cluster.sh - sourced by the bench scripts: a private cluster
# in a temp folder (server run as the postgres OS user when root), stopped
# and removed on exit (kept with BENCH_KEEP=1), and the role teleport
# owning the databases named by bench_databases.
#   needs: set -euo pipefail in the caller
pgbin=${TP_PGBIN:-/usr/lib/postgresql/15/bin}
export LC_ALL=C.UTF-8 TZ=UTC
unset TP_CONFIG PGHOST PGPORT PGUSER PGDATABASE PGSERVICE PGOPTIONS

dir=$(mktemp -d /tmp/tp-bench.XXXXXX)
chmod 0755 "$dir"
as_owner() { if [[ $EUID -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi; }
[[ $EUID -ne 0 ]] || chown postgres: "$dir"

bench_cleanup() {
	as_owner "$pgbin/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
	[[ -n ${BENCH_KEEP:-} ]] || rm -rf "$dir"
}
trap bench_cleanup EXIT

as_owner "$pgbin/initdb" -D "$dir/data" -A trust -U admin -E UTF8 --locale=C >"$dir/initdb.log" 2>&1
as_owner "$pgbin/pg_ctl" -D "$dir/data" -l "$dir/log" -w \
	-o "-k $dir -c listen_addresses='' -c max_wal_size=4GB -c checkpoint_timeout=30min" \
	start >/dev/null </dev/null

# psql_as USER DB ARGS...
psql_as() {
	local user=$1 db=$2
	shift 2
	"$pgbin/psql" -X -q -v ON_ERROR_STOP=1 -At -h "$dir" -U "$user" -d "$db" "$@"
}

# bench_databases NAME...: the role teleport and its databases
bench_databases() {
	local db
	psql_as admin postgres -c "CREATE ROLE teleport LOGIN NOSUPERUSER NOREPLICATION"
	for db in "$@"; do
		psql_as admin postgres -c "CREATE DATABASE $db OWNER teleport"
	done
}
