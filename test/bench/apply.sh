#!/usr/bin/env bash
# test/bench/apply.sh BINDIR - apply throughput against a plain COPY.
#
# Starts a private cluster, makes N row changes (default 1,000,000: 60%
# inserts, 30% updates, 10% deletes, in transactions of 10,000) on a source
# database, cuts them into batches with tp-batch, and times tp-apply on a
# target database. Then times a plain COPY of the same number of rows of
# the same shape into the same kind of table, in the same cluster and run,
# and prints both rates and their ratio.
#
#   BENCH_ROWS=200000 test/bench/apply.sh build/bin    a quicker run
#   BENCH_KEEP=1 ...                                   keep the cluster's folder
set -euo pipefail

bin=$(cd "${1:?usage: test/bench/apply.sh BINDIR}" && pwd)
rows=${BENCH_ROWS:-1000000}
txn=10000                       # changes per source transaction
export PATH=$bin:$PATH
. "$(dirname "$0")/cluster.sh"
bench_databases src dst ref

mkdir -p "$dir/spool-src" "$dir/spool-dst"
cat >"$dir/src.ini" <<EOF
[node]
name = src
conninfo = host=$dir dbname=src user=teleport
spool = $dir/spool-src
[target dst]
tables = public.*
endpoint = dir:$dir/drop
EOF
cat >"$dir/dst.ini" <<EOF
[node]
name = dst
conninfo = host=$dir dbname=dst user=teleport
spool = $dir/spool-dst
[source src]
EOF

table="CREATE TABLE public.t (id bigint PRIMARY KEY, v int NOT NULL, pad text, ts timestamptz)"
for db in src dst ref; do psql_as teleport "$db" -c "$table"; done
tp-install -c "$dir/src.ini"
tp-install -c "$dir/dst.ini"

now() { date +%s.%N; }
rate() { awk -v n="$1" -v a="$2" -v b="$3" 'BEGIN { printf "%.0f", n / (b - a) }'; }

# The workload: per transaction 60% new rows, 30% updates of rows made
# earlier, 10% deletes of the oldest rows still there.
ins=$((txn * 6 / 10)) upd=$((txn * 3 / 10)) del=$((txn / 10))
ntx=$((rows / txn))
echo "bench: $rows row changes in $ntx transactions ($ins inserts, $upd updates, $del deletes each)"
t0=$(now)
{
	for ((i = 0; i < ntx; i++)); do
		lo=$((i * ins))
		# the previous transaction's rows (the first one updates its own)
		uhi=$((i ? lo : ins))
		echo "BEGIN;"
		echo "INSERT INTO public.t SELECT g, 0, md5(g::text) || md5((g * 7)::text), '2024-01-01'::timestamptz + g * interval '1 s' FROM generate_series($lo + 1, $lo + $ins) g;"
		echo "UPDATE public.t SET v = v + 1, pad = md5(pad) WHERE id > $((uhi - upd)) AND id <= $uhi;"
		echo "DELETE FROM public.t WHERE id > $((i * del)) AND id <= $(((i + 1) * del));"
		echo "COMMIT;"
	done
} | psql_as teleport src -f -
t1=$(now)
echo "bench: source workload with capture: $(rate "$rows" "$t0" "$t1") changes/s"

tp-batch -c "$dir/src.ini"
t2=$(now)
nb=$(ls "$dir/spool-src/outbox/dst" | wc -l)
echo "bench: tp-batch: $nb batches, $(rate "$rows" "$t1" "$t2") events/s"
mkdir -p "$dir/spool-dst/inbox/src"
mv "$dir/spool-src/outbox/dst/"*.tar* "$dir/spool-dst/inbox/src/"

psql_as admin dst -c "CHECKPOINT"
t3=$(now)
tp-apply -c "$dir/dst.ini"
t4=$(now)
apply_rate=$(rate "$rows" "$t3" "$t4")

a=$(psql_as teleport src -c "SELECT count(*) || ':' || md5(string_agg(t::text, ',' ORDER BY id)) FROM public.t t")
b=$(psql_as teleport dst -c "SELECT count(*) || ':' || md5(string_agg(t::text, ',' ORDER BY id)) FROM public.t t")
if [[ $a != "$b" ]]; then
	echo "bench: target differs from source: $a vs $b" >&2
	exit 1
fi

# The yardstick: the same number of rows, same shape, one plain COPY.
psql_as teleport src -c "\\copy (SELECT g, 0, md5(g::text) || md5((g * 7)::text), '2024-01-01'::timestamptz + g * interval '1 s' FROM generate_series(1, $rows) g) TO '$dir/rows.copy'"
t5=$(now)
psql_as teleport ref -c "\\copy public.t FROM '$dir/rows.copy'"
t6=$(now)
copy_rate=$(rate "$rows" "$t5" "$t6")

printf 'bench: tp-apply %s row changes in %.2f s: %s rows/s\n' "$rows" \
	"$(awk -v a="$t3" -v b="$t4" 'BEGIN { print b - a }')" "$apply_rate"
printf 'bench: plain COPY %s rows in %.2f s: %s rows/s\n' "$rows" \
	"$(awk -v a="$t5" -v b="$t6" 'BEGIN { print b - a }')" "$copy_rate"
awk -v a="$apply_rate" -v c="$copy_rate" \
	'BEGIN { printf "bench: apply/COPY ratio %.2f (%.1f%% of COPY speed)\n", a / c, 100 * a / c }'
