#!/usr/bin/env bash
# capture.sh - what the capture trigger costs the source, and what the
# candidate capture formats cost.
#
#   test/bench/capture.sh BINDIR
#
# Starts a throwaway cluster, then runs the same pgbench workloads (a
# single-row UPDATE by key, and pgbench's default TPC-B-like transaction)
# against: no trigger; teleport's trigger (record text, NEW::text); and, for
# comparison, a trigger that stores to_jsonb(NEW) instead (the old Go
# system's format, which is also unfaithful: see prior-art notes, 2.6).
# pgbench_history has no primary key and is left out of both.
# Prints transactions per second and the overhead of each.
set -euo pipefail
BIN=$(cd "${1:-build/bin}" && pwd)
PGBIN=/usr/lib/postgresql/15/bin
SECS=${BENCH_SECONDS:-10}
CLIENTS=${BENCH_CLIENTS:-2}
D=$(mktemp -d /tmp/tp-bench.XXXXXX)
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
[ "$(id -u)" = 0 ] && chown postgres "$D"
cleanup() { as_pg "$PGBIN/pg_ctl" -D "$D/data" -m immediate stop >/dev/null 2>&1 || true; rm -rf "$D"; }
trap cleanup EXIT
as_pg "$PGBIN/initdb" -D "$D/data" -A trust -U admin --no-sync -E UTF8 --locale=C >/dev/null
as_pg "$PGBIN/pg_ctl" -D "$D/data" -o "-k $D -c listen_addresses='' -c synchronous_commit=off" \
	-l "$D/log" -w start >/dev/null 3>&-
psql -X -q -h "$D" -U admin -d postgres -c "CREATE ROLE teleport LOGIN"
psql -X -q -h "$D" -U admin -d postgres -c "CREATE DATABASE bench OWNER teleport"
"$PGBIN/pgbench" -q -i -s 10 -h "$D" -U teleport bench >/dev/null 2>&1
cat > "$D/update.sql" <<'SQL'
\set aid random(1, 1000000)
UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid = :aid;
SQL
cat > "$D/src.ini" <<INI
[node]
name = bench
conninfo = host=$D dbname=bench user=teleport
spool = $D/spool
[target t]
tables = public.pgbench_*
exclude = public.pgbench_history
endpoint = dir:$D/drop
INI

tps() { "$PGBIN/pgbench" -n -h "$D" -U teleport -c "$CLIENTS" -T "$SECS" "$@" bench 2>/dev/null |
	awk '/^tps/ {printf "%.0f", $3}'; }
pct() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%+.1f%%", (b - a) * 100 / a }'; }
median() { printf '%s\n' "$@" | sort -n | sed -n "$(( ($# + 1) / 2 ))p"; }

# Both triggers go on once; each configuration enables only its own, so
# the three are measured in turn, ROUNDS times, and the medians compared:
# this machine's throughput drifts more between runs than the triggers cost.
"$BIN/tp-install" -c "$D/src.ini"
psql -X -q -h "$D" -U teleport -d bench <<'SQL'
CREATE TABLE public.jsonq (id bigserial, txid xid8 DEFAULT pg_current_xact_id(), op "char", tab text, old jsonb, new jsonb);
CREATE FUNCTION public.jcap() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN INSERT INTO public.jsonq (op, tab, old, new) VALUES (substr(TG_OP, 1, 1), TG_TABLE_NAME,
  CASE WHEN TG_OP <> 'INSERT' THEN to_jsonb(OLD) END, CASE WHEN TG_OP <> 'DELETE' THEN to_jsonb(NEW) END);
  RETURN NULL; END $$;
SQL
TABLES="pgbench_accounts pgbench_branches pgbench_tellers"
for t in $TABLES; do
	psql -X -q -h "$D" -U teleport -d bench -c "CREATE TRIGGER j AFTER INSERT OR UPDATE OR DELETE ON $t FOR EACH ROW EXECUTE FUNCTION public.jcap()"
done
use() {   # use none|teleport|json
	local t sql=
	for t in $TABLES; do
		sql+="ALTER TABLE $t $([ "$1" = teleport ] && echo ENABLE || echo DISABLE) TRIGGER teleport_capture;"
		sql+="ALTER TABLE $t $([ "$1" = json ] && echo ENABLE || echo DISABLE) TRIGGER j;"
	done
	psql -X -q -h "$D" -U teleport -d bench -c "$sql"
}
declare -A U T
for r in $(seq 1 "${BENCH_ROUNDS:-3}"); do
	for c in none teleport json; do
		use "$c"
		U[$c]+=" $(tps -f "$D/update.sql")"
		T[$c]+=" $(tps -b tpcb-like)"
	done
done
for c in none teleport json; do
	read -r -a a <<< "${U[$c]}"; U[$c]=$(median "${a[@]}")
	read -r -a a <<< "${T[$c]}"; T[$c]=$(median "${a[@]}")
done

printf '%-34s %12s %12s\n' "capture ($CLIENTS clients, ${SECS}s, median of ${BENCH_ROUNDS:-3})" "update tps" "tpcb tps"
printf '%-34s %12s %12s\n' "no trigger" "${U[none]}" "${T[none]}"
printf '%-34s %12s %12s   (%s, %s)\n' "teleport (record text)" "${U[teleport]}" "${T[teleport]}" \
	"$(pct "${U[none]}" "${U[teleport]}")" "$(pct "${T[none]}" "${T[teleport]}")"
printf '%-34s %12s %12s   (%s, %s)\n' "to_jsonb(NEW) alternative" "${U[json]}" "${T[json]}" \
	"$(pct "${U[none]}" "${U[json]}")" "$(pct "${T[none]}" "${T[json]}")"
