#!/usr/bin/env bash
# test/bench/load.sh BINDIR - initial load rate against pg_dump | psql.
#
# Starts a private cluster with a source database holding BENCH_ROWS rows
# (default 1,000,000) in two tables of pgbench-like shape, then times, in
# the same run:
#   teleport: tp-load | tp-send - ; tp-recv --from ; tp-apply   into dst
#   baseline: pg_dump --data-only | psql                          into ref
# and prints rows/s and MB/s (of the source tables' heap size) for both,
# after checking that both targets equal the source.
set -euo pipefail

bin=$(cd "${1:?usage: test/bench/load.sh BINDIR}" && pwd)
rows=${BENCH_ROWS:-1000000}
export PATH=$bin:$PATH
. "$(dirname "$0")/cluster.sh"
bench_databases src dst ref
q() { local db=$1; shift; psql_as teleport "$db" "$@"; }
schema="CREATE TABLE public.accounts (id bigint PRIMARY KEY, branch int NOT NULL, balance numeric(12,2), filler text);
CREATE TABLE public.events (id bigint PRIMARY KEY, at timestamptz NOT NULL, kind text, payload jsonb)"
for db in src dst ref; do q "$db" -c "$schema"; done
q src -c "INSERT INTO public.accounts SELECT g, g % 100, g * 1.25, repeat('x', 84) FROM generate_series(1, $rows * 7 / 10) g" \
	-c "INSERT INTO public.events SELECT g, '2026-01-01'::timestamptz + g * interval '1 s', 'k' || g % 7,
		jsonb_build_object('n', g, 'tag', 'e' || g) FROM generate_series(1, $rows * 3 / 10) g" \
	-c "VACUUM ANALYZE public.accounts, public.events"
bytes=$(q src -c "SELECT pg_relation_size('public.accounts') + pg_relation_size('public.events')")

cat >"$dir/src.ini" <<INI
[node]
name = src
conninfo = host=$dir dbname=src user=teleport
spool = $dir/s
[target dst]
tables = public.*
endpoint = dir:$dir/drop
INI
cat >"$dir/dst.ini" <<INI
[node]
name = dst
conninfo = host=$dir dbname=dst user=teleport
spool = $dir/d
[source src]
INI
mkdir -p "$dir/drop"
tp-install -c "$dir/src.ini"
tp-install -c "$dir/dst.ini"

now() { date +%s.%N; }
t0=$(now)
tp-load -c "$dir/src.ini" dst | tp-send -c "$dir/src.ini" --target dst -
tp-recv -c "$dir/dst.ini" --from "$dir/drop"
tp-apply -c "$dir/dst.ini"
t1=$(now)
"$pgbin/pg_dump" -h "$dir" -U teleport --data-only -t public.accounts -t public.events src |
	"$pgbin/psql" -X -q -v ON_ERROR_STOP=1 -h "$dir" -U teleport -d ref >/dev/null
t2=$(now)

sum() { q "$1" -c "SELECT (SELECT md5(string_agg(a::text, ',' ORDER BY id)) FROM public.accounts a)
	|| (SELECT md5(string_agg(e::text, ',' ORDER BY id)) FROM public.events e)"; }
want=$(sum src)
[[ $(sum dst) == "$want" ]] || { echo "bench: tp-load target differs from the source" >&2; exit 1; }
[[ $(sum ref) == "$want" ]] || { echo "bench: pg_dump target differs from the source" >&2; exit 1; }

awk -v r="$rows" -v b="$bytes" -v t0="$t0" -v t1="$t1" -v t2="$t2" 'BEGIN {
	tl = t1 - t0; td = t2 - t1
	printf "bench: load of %d rows, %.1f MB of heap, target checked equal to the source\n", r, b / 1e6
	printf "bench: tp-load|tp-send, tp-recv, tp-apply  %6.2f s  %9.0f rows/s  %6.1f MB/s\n", tl, r / tl, b / 1e6 / tl
	printf "bench: pg_dump --data-only | psql          %6.2f s  %9.0f rows/s  %6.1f MB/s\n", td, r / td, b / 1e6 / td
	printf "bench: tp-load/pg_dump ratio %.2f\n", td / tl
}'
