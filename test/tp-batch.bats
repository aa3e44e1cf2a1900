#!/usr/bin/env bats
# tp-batch: committed events become batch files, whole transactions, in
# commit order, each change in exactly one batch.

load helper
load batch_helper

setup_file() {
	tp_cluster_start
}

teardown_file() {
	tp_cluster_stop
}

setup() {
	DB=batch_${BATS_TEST_NUMBER}
	tp_createdb "$DB"
	tp_psql "$DB" "CREATE TABLE public.t (id int PRIMARY KEY, v text);
		CREATE TABLE public.pair (a int, b text, c int, PRIMARY KEY (b, a))"
	SPOOL=$BATS_TEST_TMPDIR/spool
	OUT=$SPOOL/outbox/replica
	CFG=$BATS_TEST_TMPDIR/src.ini
	src_config "$CFG" "$DB" "$SPOOL"
	tp-install -c "$CFG"
}

@test "nothing to batch: exit 0, no file, no output" {
	run -0 tp-batch -c "$CFG"
	assert_output ""
	run -0 find "$SPOOL" -name '*.tar*'
	assert_output ""
}

@test "insert, update, delete and truncate are captured with keys and values" {
	tp_psql "$DB" "INSERT INTO public.t VALUES (1, 'one'), (2, E'tab\there'), (3, NULL)"
	tp_psql "$DB" "UPDATE public.t SET id = 10, v = 'ten' WHERE id = 1"
	tp_psql "$DB" "DELETE FROM public.t WHERE id = 2"
	tp_psql "$DB" "INSERT INTO public.pair VALUES (1, 'x', 5); UPDATE public.pair SET c = 6"
	tp_psql "$DB" "TRUNCATE public.t"
	run -0 tp-batch -c "$CFG"
	assert_output ""
	run -0 dump_events "$OUT"
	assert_output "$(printf '%s\n' \
		$'1\tI\tpublic.t\t1\tone' \
		$'1\tI\tpublic.t\t2\ttab\\there' \
		$'1\tI\tpublic.t\t3\t\\N' \
		$'1\tU\tpublic.t\t1\t10\tten' \
		$'1\tD\tpublic.t\t2' \
		$'1\tI\tpublic.pair\t1\tx\t5' \
		$'1\tU\tpublic.pair\tx\t1\t1\tx\t6' \
		$'1\tT\tpublic.t')"
}

@test "definitions carry column names, types and key positions" {
	tp_psql "$DB" "INSERT INTO public.pair VALUES (1, 'x', 5)"
	run -0 tp-batch -c "$CFG"
	run -0 bash -c "tar -xOf '$OUT/0000000000000001.tar.zst' events-000001.tsv | head -1"
	assert_output $'=\t1\tpublic\tpair\ta\tinteger\t2\tb\ttext\t1\tc\tinteger\t0'
}

@test "batch files are numbered without gaps and hold a verified manifest" {
	for i in 1 2 3; do
		tp_psql "$DB" "INSERT INTO public.t VALUES ($i, 'v$i')"
		tp-batch -c "$CFG"
	done
	run -0 ls "$OUT"
	assert_output "0000000000000001.tar.zst
0000000000000002.tar.zst
0000000000000003.tar.zst"
	run -0 bash -c "tar -xOf '$OUT/0000000000000002.tar.zst' manifest.json"
	assert_output --regexp '"seq": ?2[,}]'
	assert_output --regexp '"events": ?1[,}]'
	assert_output --regexp '"source": ?"src"'
	assert_output --regexp '"target": ?"replica"'
	run -0 tp_psql "$DB" "SELECT string_agg(seq || ':' || events || ':' || (written IS NOT NULL), ',' ORDER BY seq) FROM teleport.batch"
	assert_output "1:1:true,2:1:true,3:1:true"
}

@test "a transaction open across cuts lands whole in a later batch" {
	tp_psql "$DB" "INSERT INTO public.t VALUES (1, 'before')"
	# An open transaction that wrote first but commits last.
	coproc OPEN { psql -X -q -At -h "$TP_PGHOST" -U teleport -d "$DB" 2>&1; }
	echo "BEGIN; INSERT INTO public.t VALUES (100, 'open'); SELECT 'ready';" >&"${OPEN[1]}"
	read -r line <&"${OPEN[0]}"
	[ "$line" = ready ]
	tp_psql "$DB" "INSERT INTO public.t VALUES (2, 'after')"
	run -0 tp-batch -c "$CFG"
	tp_psql "$DB" "INSERT INTO public.t VALUES (3, 'later')"
	run -0 tp-batch -c "$CFG"
	echo "INSERT INTO public.t VALUES (101, 'open'); COMMIT; SELECT 'done';" >&"${OPEN[1]}"
	read -r line <&"${OPEN[0]}"
	[ "$line" = done ]
	exec {OPEN[1]}>&-
	run -0 tp-batch -c "$CFG"
	run -0 dump_events "$OUT"
	assert_output "$(printf '%s\n' \
		$'1\tI\tpublic.t\t1\tbefore' \
		$'1\tI\tpublic.t\t2\tafter' \
		$'2\tI\tpublic.t\t3\tlater' \
		$'3\tI\tpublic.t\t100\topen' \
		$'3\tI\tpublic.t\t101\topen')"
}

@test "batch_max_events cuts between transactions, never inside one" {
	src_config "$CFG" "$DB" "$SPOOL" "batch_max_events = 10"
	for i in $(seq 1 7); do
		tp_psql "$DB" "INSERT INTO public.t SELECT g, 'x' FROM generate_series($i * 100, $i * 100 + 3) g"
	done
	tp_psql "$DB" "INSERT INTO public.t SELECT g, 'big' FROM generate_series(1000, 1024) g"
	run -0 tp-batch -c "$CFG"
	run -0 dump_events "$OUT"
	# 7 transactions of 4 events cut by 10: 8, 8, 8, then 4 alone before the
	# 25-event transaction, which is a batch of its own.
	run -0 bash -c "dump_events '$OUT' | cut -f1 | uniq -c | awk '{print \$1}' | paste -sd,"
	assert_output "8,8,8,4,25"
	run -0 bash -c "dump_events '$OUT' | awk -F'\t' '{print \$1, int(\$4 / 100)}' | uniq | awk '{print \$2}' | uniq -d"
	assert_output ""
}

@test "a second concurrent run exits 75 at once" {
	mkdir -p "$SPOOL/lock"
	run -75 flock "$SPOOL/lock/tp-batch.lock" tp-batch -c "$CFG"
	assert_output --partial "another tp-batch is running"
}

@test "a target that is not installed is a configuration error" {
	printf '[target newone]\ntables = public.*\nendpoint = dir:/tmp/x\n' >> "$CFG"
	tp_psql "$DB" "INSERT INTO public.t VALUES (1, 'x')"
	run -78 tp-batch -c "$CFG"
	assert_output --partial "target newone is not installed"
	assert_output --partial "hint: run tp-install"
	# the installed target was still batched
	run -0 ls "$OUT"
	assert_output "0000000000000001.tar.zst"
}

@test "signed batches carry an HMAC-SHA256 of the manifest" {
	printf 's3cret\n' > "$BATS_TEST_TMPDIR/token"
	src_config "$CFG" "$DB" "$SPOOL" "token_file = $BATS_TEST_TMPDIR/token"
	tp_psql "$DB" "INSERT INTO public.t VALUES (1, 'x')"
	run -0 tp-batch -c "$CFG"
	f=$OUT/0000000000000001.tar.zst
	want=$(tar -xOf "$f" manifest.json | openssl dgst -sha256 -hmac s3cret -r | cut -d' ' -f1)
	run -0 tar -xOf "$f" manifest.sig
	assert_output "$want"
}

@test "apply_schema renames the schema in the batch" {
	src_config "$CFG" "$DB" "$SPOOL" "apply_schema = copy"
	tp_psql "$DB" "INSERT INTO public.t VALUES (1, 'x')"
	run -0 tp-batch -c "$CFG"
	run -0 dump_events "$OUT"
	assert_output $'1\tI\tcopy.t\t1\tx'
}

@test "kill -9 at any point, then a re-run: every change in exactly one batch" {
	src_config "$CFG" "$DB" "$SPOOL" "batch_max_events = 500"
	tp_psql "$DB" "INSERT INTO public.t SELECT g, repeat('x', 200) FROM generate_series(1, 40000) g"
	for delay in 0.05 0.1 0.2 0.3 0.5 0.8; do
		tp-batch -c "$CFG" 3>&- &
		pid=$!
		sleep "$delay"
		kill -9 "$pid" 2>/dev/null || true
		wait "$pid" || true
	done
	run -0 tp-batch -c "$CFG"
	run -0 tp-batch -c "$CFG"
	run -0 bash -c "dump_events '$OUT' | cut -f4 | sort -n | uniq | wc -l"
	assert_output 40000
	run -0 bash -c "dump_events '$OUT' | wc -l"
	assert_output 40000
	run -0 bash -c "ls -A '$OUT' | grep -c tmp || true"
	assert_output 0
}

# Each short transaction bumps the one counter row first, so the counter's
# value is the transaction's commit order, and tags its rows with it. Long
# transactions (tags < 0) stay open across several tp-batch runs.
short_client() {
	local c=$1 n=$2 i
	for i in $(seq 1 "$n"); do
		printf 'BEGIN; UPDATE public.counter SET v = v + 1 WHERE id = 1;
INSERT INTO public.log (client, tag, k) SELECT %d, (SELECT v FROM public.counter WHERE id = 1), g FROM generate_series(1, 20) g;
COMMIT;\n' "$c"
	done | psql -X -q -v ON_ERROR_STOP=1 -h "$TP_PGHOST" -U teleport -d "$DB" >/dev/null
}

long_client() {
	local i
	for i in 1 2 3 4; do
		printf 'BEGIN; INSERT INTO public.log (client, tag, k) SELECT 99, -%d, g FROM generate_series(1, 50) g;
SELECT pg_sleep(0.7);
INSERT INTO public.log (client, tag, k) SELECT 99, -%d, g FROM generate_series(51, 100) g;
COMMIT;\n' "$i" "$i"
	done | psql -X -q -v ON_ERROR_STOP=1 -h "$TP_PGHOST" -U teleport -d "$DB" >/dev/null
}

@test "20,000+ changes from concurrent clients: each exactly once, transactions whole, in commit order" {
	tp_psql "$DB" "CREATE TABLE public.counter (id int PRIMARY KEY, v bigint NOT NULL);
		INSERT INTO public.counter VALUES (1, 0);
		CREATE TABLE public.log (id bigserial PRIMARY KEY, client int, tag bigint, k int)"
	src_config "$CFG" "$DB" "$SPOOL" "batch_max_events = 700"
	run -0 tp-install -c "$CFG"
	# the tables got their triggers after setup added the target, so the
	# first batch creates and copies them (tp-ddlscan(1)); count events only
	run -0 tp-batch -c "$CFG"
	rm -f "$OUT"/*
	short_client 1 300 3>&- &
	p1=$!
	short_client 2 300 3>&- &
	p2=$!
	short_client 3 300 3>&- &
	p3=$!
	short_client 4 300 3>&- &
	p4=$!
	long_client 3>&- &
	p5=$!
	while kill -0 $p1 2>/dev/null || kill -0 $p2 2>/dev/null || kill -0 $p3 2>/dev/null ||
	      kill -0 $p4 2>/dev/null || kill -0 $p5 2>/dev/null; do
		tp-batch -c "$CFG"
		sleep 0.2
	done
	wait $p1 $p2 $p3 $p4 $p5
	tp-batch -c "$CFG"
	dump_events "$OUT" > "$BATS_TEST_TMPDIR/events"

	# every committed change exactly once
	total=$(tp_psql "$DB" "SELECT (SELECT count(*) FROM public.log) + (SELECT v FROM public.counter)")
	[ "$total" -ge 20000 ]
	run -0 wc -l < "$BATS_TEST_TMPDIR/events"
	assert_output "$total"
	run -0 bash -c "awk -F'\t' '\$3 == \"public.log\" {print \$4}' '$BATS_TEST_TMPDIR/events' | sort | uniq -d"
	assert_output ""
	tp_psql "$DB" "SELECT id FROM public.log ORDER BY id" > "$BATS_TEST_TMPDIR/ids"
	run -0 bash -c "awk -F'\t' '\$3 == \"public.log\" {print \$4}' '$BATS_TEST_TMPDIR/events' | sort -n | diff - '$BATS_TEST_TMPDIR/ids'"

	# commit order: the counter goes 1, 2, 3 ... through the stream
	run -0 bash -c "awk -F'\t' '\$3 == \"public.counter\" {print \$6}' '$BATS_TEST_TMPDIR/events' | awk '\$1 != NR {print \"out of order at\", NR, \$1; exit 1}'"

	# whole transactions: each tag's rows sit in one batch, the counter
	# update of that tag in the same batch
	run -0 bash -c "awk -F'\t' '
		\$3 == \"public.counter\" { tag = \$6 }
		\$3 == \"public.log\" { tag = \$6 }
		{ if (tag in seen && seen[tag] != \$1) { print \"tag\", tag, \"split across\", seen[tag], \$1; bad = 1 }
		  seen[tag] = \$1 }
		END { exit bad }' '$BATS_TEST_TMPDIR/events'"
	# the long transactions arrived whole: 100 rows per tag
	run -0 bash -c "awk -F'\t' '\$3 == \"public.log\" && \$6 < 0 {n[\$6]++} END {for (t in n) print t, n[t]}' '$BATS_TEST_TMPDIR/events' | sort"
	assert_output "-1 100
-2 100
-3 100
-4 100"
	# and several batches were cut while they were open
	[ "$(ls "$OUT" | wc -l)" -gt 10 ]
}
