# test/helper.bash - loaded by every suite: `load helper`.
#
# A suite that needs PostgreSQL starts a private cluster once per file:
#
#   setup_file()    { tp_cluster_start; }
#   teardown_file() { tp_cluster_stop; }
#   setup() {
#       tp_createdb src
#       tp_psql src "CREATE TABLE public.t (id int PRIMARY KEY)"
#       tp_write_config "$TP_TMP/src.ini" <<EOF
#   [node]
#   name = src
#   conninfo = $(tp_conninfo src)
#   spool = $(tp_spool)
#   EOF
#   }
#
# The cluster runs as the unprivileged OS user postgres when the tests run
# as root (CI does; initdb refuses root), else as the current user. It
# listens on a Unix socket in its own folder only, trusts everyone, and has
# two roles: "admin", the superuser that made it, and "teleport", which is
# NOSUPERUSER NOREPLICATION NOCREATEROLE NOCREATEDB and owns the databases
# tp_createdb makes (DESIGN.md guarantee 1). Commands under test connect
# as teleport through tp_conninfo.
#
# fd 3 is bats' own: anything left running in the background must not hold
# it, or bats waits for it forever. Hence the 3>&- on every daemon.

bats_require_minimum_version 1.5.0
bats_load_library bats-support
bats_load_library bats-assert

TP_PGBIN=${TP_PGBIN:-/usr/lib/postgresql/15/bin}
# The commands under test: test/run sets TP_BIN; a bare `bats test/` uses
# the default build.
TP_BIN=${TP_BIN:-$(cd "$BATS_TEST_DIRNAME/.." && pwd)/build/bin}
case ":$PATH:" in *":$TP_BIN:"*) ;; *) PATH=$TP_BIN:$PATH ;; esac
export TP_BIN PATH
# English messages, UTF-8 data, the same everywhere.
export LC_ALL=C.UTF-8 TZ=UTC
unset TP_CONFIG PGHOST PGPORT PGUSER PGDATABASE PGSERVICE PGPASSWORD PGOPTIONS

# Per-test scratch folder (per-file in setup_file), removed by bats.
TP_TMP=${BATS_TEST_TMPDIR:-${BATS_FILE_TMPDIR:-}}

# A spool folder under TP_TMP (created), printed for configs: $(tp_spool).
tp_spool() {
	local d=$TP_TMP/${1:-spool}
	mkdir -p "$d" && printf '%s\n' "$d"
}

# tp_write_config FILE <<EOF ... EOF: the config text from stdin.
tp_write_config() {
	cat > "$1"
}

# Run a command as the cluster's owner.
_tp_as_owner() {
	if [[ $EUID -eq 0 ]]; then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

tp_cluster_start() {
	local d
	d=$(mktemp -d /tmp/tp-pg.XXXXXX) || return 1
	chmod 0755 "$d"
	[[ $EUID -ne 0 ]] || chown postgres: "$d" || return 1
	export TP_PGDIR=$d TP_PGHOST=$d
	if ! _tp_as_owner "$TP_PGBIN/initdb" -D "$d/data" -A trust -U admin --no-sync \
		-E UTF8 --locale=C > "$d/initdb.log" 2>&1 </dev/null 3>&-; then
		cat "$d/initdb.log" >&2
		return 1
	fi
	# Daemon: no fd 3, no stdin, output to the log.
	if ! _tp_as_owner "$TP_PGBIN/pg_ctl" -D "$d/data" -l "$d/log" -w \
		-o "-k $d -c listen_addresses='' -c fsync=off -c max_connections=100" \
		start > "$d/pg_ctl.log" 2>&1 </dev/null 3>&-; then
		cat "$d/pg_ctl.log" "$d/log" >&2
		return 1
	fi
	tp_psql_admin postgres "CREATE ROLE teleport LOGIN NOSUPERUSER NOREPLICATION
		NOCREATEROLE NOCREATEDB"
}

tp_cluster_stop() {
	[[ -n ${TP_PGDIR:-} && -d $TP_PGDIR ]] || return 0
	_tp_as_owner "$TP_PGBIN/pg_ctl" -D "$TP_PGDIR/data" -m immediate stop \
		> /dev/null 2>&1 </dev/null 3>&- || true
	rm -rf "$TP_PGDIR"
	unset TP_PGDIR TP_PGHOST
}

# tp_createdb NAME: a database owned by teleport.
tp_createdb() {
	tp_psql_admin postgres "CREATE DATABASE \"$1\" OWNER teleport"
}

# psql with scripting manners; each SQL argument is one -c, none reads stdin.
_tp_psql() {
	local user=$1 db=$2 args=()
	shift 2
	local s
	for s in "$@"; do args+=(-c "$s"); done
	[[ $# -gt 0 ]] || args=(-f -)
	"$TP_PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -At -h "$TP_PGHOST" -U "$user" -d "$db" \
		"${args[@]}"
}

# tp_psql DB SQL...: as teleport. tp_psql_admin DB SQL...: as the superuser.
tp_psql() { _tp_psql teleport "$@"; }
tp_psql_admin() { _tp_psql admin "$@"; }

# tp_conninfo DB: what a config's conninfo says to reach DB as teleport.
tp_conninfo() {
	printf 'host=%s dbname=%s user=teleport\n' "$TP_PGHOST" "$1"
}

# tp_pair_dbs: a test's two databases, SRC and DST, its folder W, and
# where its batches wait (OUTBOX on the source, INBOX on the target).
tp_pair_dbs() {
	SRC=src_$BATS_TEST_NUMBER
	DST=dst_$BATS_TEST_NUMBER
	tp_createdb "$SRC"
	tp_createdb "$DST"
	W=$BATS_TEST_TMPDIR
	OUTBOX=$W/sspool/outbox/replica
	INBOX=$W/dspool/inbox/src
}

# tp_to_inbox: move the batches of OUTBOX into INBOX (a shared folder
# without tp-send and tp-recv)
tp_to_inbox() {
	local f
	mkdir -p "$INBOX"
	for f in "$OUTBOX"/*.tar*; do
		[[ -e $f ]] && mv "$f" "$INBOX/"
	done
	return 0
}

# tp_pair_config TABLES [LINE...]: the usual pair of nodes for a test, in
# $W: a token, src.ini (node "src" on database $SRC, spool $W/sspool, one
# target "replica" with tables TABLES, the extra LINEs, endpoint
# dir:$W/drop) and dst.ini (node "replica" on $DST, spool $W/dspool,
# accepting source "src" with the same token).
tp_pair_config() {
	local tables=$1 line
	shift
	printf 'token-%s\n' "$BATS_TEST_NUMBER" > "$W/token"
	{
		printf '[node]\nname = src\nconninfo = %s\nspool = %s/sspool\n' "$(tp_conninfo "$SRC")" "$W"
		printf '[target replica]\ntables = %s\n' "$tables"
		for line in "$@"; do printf '%s\n' "$line"; done
		printf 'endpoint = dir:%s/drop\ntoken_file = %s/token\n' "$W" "$W"
	} > "$W/src.ini"
	printf '[node]\nname = replica\nconninfo = %s\nspool = %s/dspool\n[source src]\ntoken_file = %s/token\n' \
		"$(tp_conninfo "$DST")" "$W" "$W" > "$W/dst.ini"
}
