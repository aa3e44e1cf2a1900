#!/usr/bin/env bash
# test/bench/ddl.sh BINDIR - what ddl = event-triggers costs a schema
# change: each recorded change describes the whole catalog inside the
# changing transaction (sql/ddlevent.sql), so the cost grows with the
# number of replicated tables. Times ALTER TABLE ... ADD COLUMN, one per
# transaction, on a database of TABLES tables (default 200, 8 columns
# each), with the event triggers installed and without, interleaved, and
# prints milliseconds per change and the marker size.
#   BENCH_TABLES=1000 BENCH_CHANGES=50 test/bench/ddl.sh build/bin
set -euo pipefail
bin=$(cd "${1:?usage: test/bench/ddl.sh BINDIR}" && pwd)
tables=${BENCH_TABLES:-200}
changes=${BENCH_CHANGES:-40}
. "$(dirname "$0")/cluster.sh"

bench_databases bench_plain bench_events
for db in bench_plain bench_events; do
	psql_as teleport "$db" -c "DO \$\$ BEGIN FOR i IN 1 .. $tables LOOP
		EXECUTE format('CREATE TABLE public.t%s (id int PRIMARY KEY, a text, b int, c numeric,
			d timestamptz DEFAULT now(), e jsonb, f text NOT NULL DEFAULT ''x'', g int[])', i);
		END LOOP; END \$\$"
done
cat > "$dir/events.ini" <<EOF
[node]
name = src
conninfo = host=$dir dbname=bench_events user=admin
spool = $dir/spool
ddl = event-triggers
[target replica]
tables = public.*
endpoint = dir:$dir/drop
EOF
"$bin/tp-install" -c "$dir/events.ini"

# run_changes DB ROUND: CHANGES transactions of one ALTER each; ms total
run_changes() {
	local sql="" i
	for ((i = 1; i <= changes; i++)); do
		sql+="ALTER TABLE public.t$(( (i % tables) + 1 )) ADD COLUMN r$2_$i int;"$'\n'
	done
	local t0 t1
	t0=$(date +%s%N)
	printf '%s' "$sql" | psql_as teleport "$1" -f -
	t1=$(date +%s%N)
	echo $(( (t1 - t0) / 1000000 ))
}

plain=() events=()
for round in 1 2 3; do
	plain+=("$(run_changes bench_plain "$round")")
	events+=("$(run_changes bench_events "$round")")
done
median() { printf '%s\n' "$@" | sort -n | sed -n 2p; }
p=$(median "${plain[@]}") e=$(median "${events[@]}")
size=$(psql_as admin bench_events -c "SELECT pg_size_pretty(avg(octet_length(ev_new))::bigint)
	FROM teleport.event WHERE ev_op = 'S'")
printf 'ddl bench: %d tables, %d changes per round, median of 3 rounds\n' "$tables" "$changes"
awk -v p="$p" -v e="$e" -v n="$changes" -v size="$size" 'BEGIN {
	printf "  without event triggers: %6.1f ms per change\n", p / n
	printf "  with event triggers:    %6.1f ms per change (marker %s)\n", e / n, size }'
