#!/usr/bin/env bash
# contrib/demo/demo.sh [BINDIR] - what `make demo` runs.
#
# Replicates a sample workload from one throwaway PostgreSQL 15 cluster to
# another with the real commands, then compares the two table by table.
#
#   1. starts two private clusters (source and target) under a temporary
#      folder, listening on Unix sockets there only;
#   2. creates the role "teleport" (NOSUPERUSER NOREPLICATION, like a role on
#      a managed service) and a database owned by it on each side, the
#      sample schema of schema.sql on the source, and the same schema on
#      the target with pg_dump --schema-only;
#   3. writes src.ini and dst.ini with a shared token and runs tp-install
#      on both;
#   4. runs two clients of workload.sql on the source, while the four
#      commands run in rounds: tp-batch, tp-send (into a shared folder),
#      tp-recv --from that folder, tp-apply;
#   5. drains what is left, then prints row counts and an md5 of every
#      table on both sides. Exit status 0 only if all of them match.
#
# Everything is removed on exit, whatever happens. As root the servers run
# as the OS user "postgres" (initdb refuses root); the commands, as every
# client, connect as the role teleport.
#
# Environment: DEMO_SECONDS (workload length, default 15), PGBIN (default
# /usr/lib/postgresql/15/bin).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
bindir=$(cd "${1:-$here/../../build/bin}" && pwd)
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
seconds=${DEMO_SECONDS:-15}
export PATH=$bindir:$PATH LC_ALL=C.UTF-8 PGTZ=UTC
unset PGHOST PGPORT PGUSER PGDATABASE PGSERVICE PGPASSWORD PGOPTIONS TP_CONFIG

for c in tp-install tp-batch tp-send tp-recv tp-apply; do
	[[ -x $bindir/$c ]] || { echo "demo: $bindir/$c is missing (run make first)" >&2; exit 1; }
done
for c in initdb pg_ctl psql pg_dump; do
	[[ -x $PGBIN/$c ]] || { echo "demo: $PGBIN/$c is missing (apt-get install postgresql-15)" >&2; exit 1; }
done
if ((EUID == 0)) && ! id postgres > /dev/null 2>&1; then
	echo "demo: running as root, but there is no OS user postgres to run the servers" >&2
	exit 1
fi

# Colours only on a terminal.
if [[ -t 1 ]]; then
	b=$'\e[1m' g=$'\e[32m' r=$'\e[31m' d=$'\e[2m' n=$'\e[0m'
else
	b='' g='' r='' d='' n=''
fi
say() { printf '%s==>%s %s\n' "$b" "$n" "$*"; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/teleport-demo.XXXXXX")
chmod 0755 "$tmp"
clients=()
started=()
ok=0

cleanup() {
	local st=$? p c
	trap - EXIT INT TERM HUP
	((st != 130 && st != 143)) || echo "demo: interrupted" >&2
	for p in "${clients[@]}"; do kill "$p" 2> /dev/null || true; done
	for p in "${clients[@]}"; do wait "$p" 2> /dev/null || true; done
	if ((st != 0 && !ok)) && [[ -d $tmp ]]; then
		for c in "$tmp"/tp-*.err; do
			[[ -s $c ]] || continue
			printf '%s--- %s (last lines)%s\n' "$d" "${c##*/}" "$n" >&2
			tail -n 15 "$c" >&2
		done
	fi
	for c in "${started[@]}"; do
		as_owner "$PGBIN/pg_ctl" -D "$tmp/$c/data" -m immediate stop > /dev/null 2>&1 || true
	done
	rm -rf "$tmp"
	exit "$st"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM HUP

# Run a server-side program as the clusters' owner.
as_owner() {
	if ((EUID == 0)); then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

# cluster_start NAME: a cluster in $tmp/NAME, socket in that folder.
cluster_start() {
	local c=$tmp/$1
	mkdir "$c"
	((EUID != 0)) || chown postgres: "$c"
	if ! as_owner "$PGBIN/initdb" -D "$c/data" -A trust -U admin --no-sync -E UTF8 \
		--locale=C > "$tmp/initdb-$1.log" 2>&1 < /dev/null; then
		echo "demo: initdb failed for the $1 cluster:" >&2
		cat "$tmp/initdb-$1.log" >&2
		return 1
	fi
	if ! as_owner "$PGBIN/pg_ctl" -D "$c/data" -l "$c/server.log" -w \
		-o "-k $c -c listen_addresses='' -c fsync=off" \
		start > "$tmp/pg_ctl-$1.log" 2>&1 < /dev/null; then
		echo "demo: the $1 cluster did not start:" >&2
		cat "$tmp/pg_ctl-$1.log" "$c/server.log" >&2
		return 1
	fi
	started+=("$1")
	sql "$1" admin postgres "CREATE ROLE teleport LOGIN NOSUPERUSER NOREPLICATION NOCREATEROLE NOCREATEDB" \
		"CREATE DATABASE shop OWNER teleport"
}

# sql CLUSTER USER DB SQL...: each SQL one -c; without SQL, a script on stdin
sql() {
	local c=$1 user=$2 db=$3 args=() s
	shift 3
	for s in "$@"; do args+=(-c "$s"); done
	(($#)) || args=(-f -)
	"$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -At -h "$tmp/$c" -U "$user" -d "$db" "${args[@]}"
}
src() { sql src teleport shop "$@"; }
dst() { sql dst teleport shop "$@"; }

# run_cmd NAME ARGS...: a teleport command; 0 and 75 (locked, or waiting
# for a batch) are fine, anything else ends the demo.
run_cmd() {
	local st=0
	"$@" 2>> "$tmp/$1.err" || st=$?
	if ((st != 0 && st != 75)); then
		printf '%sdemo: %s exited %d%s\n' "$r" "$*" "$st" "$n" >&2
		exit 1
	fi
}

# ---------------------------------------------------------------- set up
say "Starting two throwaway PostgreSQL 15 clusters in $tmp"
cluster_start src
cluster_start dst
printf '    source: host=%s dbname=shop user=teleport\n' "$tmp/src"
printf '    target: host=%s dbname=shop user=teleport\n' "$tmp/dst"
printf '    role teleport: NOSUPERUSER NOREPLICATION, owns both databases\n'

say "Creating the sample schema (contrib/demo/schema.sql) on the source, copying it to the target"
src < "$here/schema.sql"
"$PGBIN/pg_dump" -h "$tmp/src" -U teleport -d shop --schema-only |
	dst > /dev/null
src < "$here/workload.sql"
printf '    tables: %s\n' "$(src "SELECT string_agg(format('%I.%I', 'public', c.relname), ', ' ORDER BY c.relname)
	FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'r'")"

say "Writing src.ini and dst.ini, running tp-install on both"
drop=$tmp/drop
mkdir -p "$drop"
head -c 32 /dev/urandom | base64 > "$tmp/replica.token"
chmod 600 "$tmp/replica.token"
cat > "$tmp/src.ini" <<EOF
[node]
name     = shop
conninfo = host=$tmp/src dbname=shop user=teleport
spool    = $tmp/spool-src

[target replica]
tables     = public.*
endpoint   = dir:$drop
token_file = $tmp/replica.token
batch_max_events = 2000
EOF
cat > "$tmp/dst.ini" <<EOF
[node]
name     = replica
conninfo = host=$tmp/dst dbname=shop user=teleport
spool    = $tmp/spool-dst

[source shop]
token_file = $tmp/replica.token
EOF
sed 's/^./    &/' "$tmp/src.ini"
run_cmd tp-install -c "$tmp/src.ini"
run_cmd tp-install -c "$tmp/dst.ini"

# ------------------------------------------------------------ replicate
# count_files DIR: how many batch files DIR holds (0 when it is missing)
count_files() {
	local f=("$1"/*.tar*)
	[[ -e ${f[0]} ]] || { echo 0; return; }
	echo "${#f[@]}"
}

# progress ROUND NOTE: one line of cumulative counts
last_cut=-1
progress() {
	local cut cut_ev sent recv applied ap_ev row
	row=$(src "SELECT count(*), coalesce(sum(events), 0) FROM teleport.batch WHERE target = 'replica'")
	IFS='|' read -r cut cut_ev <<< "$row"
	row=$(dst "SELECT count(*), coalesce(sum(events), 0) FROM teleport.apply_log WHERE source = 'shop'")
	IFS='|' read -r applied ap_ev <<< "$row"
	sent=$(count_files "$tmp/spool-src/outbox/replica/sent")
	recv=$(( $(count_files "$tmp/spool-dst/inbox/shop") + $(count_files "$tmp/spool-dst/inbox/shop/applied") ))
	printf '    %5d  %-8s  %7d %6d %7d %8d   %9d %9d\n' \
		"$1" "$2" "$cut" "$sent" "$recv" "$applied" "$cut_ev" "$ap_ev"
	# for the drain: nothing new was cut and everything cut is applied
	drained=0
	((cut == last_cut && applied == cut)) && drained=1
	last_cut=$cut
}

round() {
	run_cmd tp-batch -c "$tmp/src.ini"
	run_cmd tp-send -c "$tmp/src.ini"
	run_cmd tp-recv -c "$tmp/dst.ini" --from "$drop"
	run_cmd tp-apply -c "$tmp/dst.ini"
}

say "Running the workload: 2 clients for ${seconds}s, while tp-batch | tp-send | tp-recv | tp-apply run in rounds"
for i in 1 2; do
	src "CALL demo.workload($i, $seconds)" > /dev/null 2> "$tmp/client-$i.err" &
	clients+=($!)
done
printf '    %s%5s  %-8s  %-31s   %-19s%s\n' "$b" "" "" "batches -----------------------" "changes ------------" "$n"
printf '    %s%5s  %-8s  %7s %6s %7s %8s   %9s %9s%s\n' "$b" round phase cut sent received applied cut applied "$n"
rounds=0
running() {
	local p
	for p in "${clients[@]}"; do kill -0 "$p" 2> /dev/null && return 0; done
	return 1
}
while running; do
	sleep 1
	round
	rounds=$((rounds + 1))
	progress "$rounds" "workload"
done
for p in "${clients[@]}"; do
	if ! wait "$p"; then
		echo "demo: a workload client failed:" >&2
		cat "$tmp"/client-*.err >&2
		exit 1
	fi
done
clients=()
sed -n 's/^.*NOTICE: *//p' "$tmp"/client-*.err | sed 's/^/    /'

say "Workload done; draining"
drained=0
for ((i = 0; i < 30 && !drained; i++)); do
	round
	rounds=$((rounds + 1))
	progress "$rounds" "drain"
done
((drained)) || { echo "${r}demo: still not drained after 30 rounds$n" >&2; exit 1; }

# ---------------------------------------------------------------- compare
say "Comparing source and target, table by table (md5 of all rows in key order)"
# checksum SIDE: "table|rows|md5" per table of public, in name order
checksum() {
	"$1" <<'EOF'
DO $$
DECLARE t regclass; k text; n bigint; m text;
BEGIN
    CREATE TEMP TABLE sums (tab text, n bigint, md5 text);
    FOR t IN SELECT c.oid FROM pg_class c
              WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'r'
              ORDER BY c.relname LOOP
        SELECT string_agg(format('x.%I', a.attname), ', ' ORDER BY array_position(i.indkey, a.attnum))
          INTO k
          FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
         WHERE i.indrelid = t AND i.indisprimary;
        EXECUTE format('SELECT count(*), md5(coalesce(string_agg(x::text, E''\n'' ORDER BY %s), '''')) FROM %s x', k, t)
           INTO n, m;
        INSERT INTO sums SELECT format('%I.%I', nspname, relname), n, m
          FROM pg_class JOIN pg_namespace ON pg_namespace.oid = relnamespace WHERE pg_class.oid = t;
    END LOOP;
END $$;
SELECT tab || '|' || n || '|' || md5 FROM sums ORDER BY tab;
EOF
}
checksum src > "$tmp/sums-src"
checksum dst > "$tmp/sums-dst"
printf "    ${b}%-20s %9s %9s   %s${n}\n" table "source" "target" "md5 of the rows"
bad=0
while IFS='|' read -r t1 n1 m1 <&3 && IFS='|' read -r t2 n2 m2 <&4; do
	if [[ $t1 == "$t2" && $n1 == "$n2" && $m1 == "$m2" ]]; then
		printf '    %-20s %9d %9d   %s  %ssame%s\n' "$t1" "$n1" "$n2" "$m1" "$g" "$n"
	else
		printf '    %-20s %9d %9d   %s (source)  %s (target)  %sDIFFERENT%s\n' \
			"$t1" "$n1" "$n2" "$m1" "$m2" "$r" "$n"
		bad=1
	fi
done 3< "$tmp/sums-src" 4< "$tmp/sums-dst"
if [[ $(wc -l < "$tmp/sums-src") != $(wc -l < "$tmp/sums-dst") ]]; then
	bad=1
fi

if ((bad)); then
	printf '%s==> FAILED: the target differs from the source%s\n' "$r$b" "$n"
	exit 1
fi
printf '%s==> OK: the target equals the source, table by table (%d rounds)%s\n' "$g$b" "$rounds" "$n"
ok=1
say "Stopping the clusters and removing $tmp"
