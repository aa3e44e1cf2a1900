#!/usr/bin/env bats
# tp-vacuum: drops exactly what every consumer has confirmed. Event tables
# rotate (TRUNCATE) only once drained, so a target that has not batched
# keeps its events and an open writer postpones rotation; nothing is ever
# UPDATEd or DELETEd in an event table; batch records, the apply log and
# spool files go once older than retention, in chunks, never the newest.

load helper
load batch_helper

setup_file() {
	tp_cluster_start
}

teardown_file() {
	tp_cluster_stop
}

setup() {
	DB=vac_${BATS_TEST_NUMBER}
	tp_createdb "$DB"
	tp_psql "$DB" "CREATE TABLE public.t (id int PRIMARY KEY, v text)"
	SPOOL=$BATS_TEST_TMPDIR/spool
	CFG=$BATS_TEST_TMPDIR/src.ini
	src_config "$CFG" "$DB" "$SPOOL"
	cat >> "$CFG" <<-EOF
	[target other]
	tables = public.*
	endpoint = dir:$SPOOL/drop-other
	EOF
	tp-install -c "$CFG"
	BG=
}

teardown() {
	[[ -z $BG ]] || kill -9 "$BG" 2>/dev/null || true
}

cur() { tp_psql "$DB" "SELECT cur FROM teleport.queue"; }
events_in() { tp_psql "$DB" "SELECT count(*) FROM teleport.event_$1"; }
all_events() {
	tp_psql "$DB" "SELECT (SELECT count(*) FROM teleport.event_0)
		+ (SELECT count(*) FROM teleport.event_1) + (SELECT count(*) FROM teleport.event_2)"
}
ins() { tp_psql "$DB" "INSERT INTO public.t SELECT g, 'v' || g FROM generate_series($1, $2) g"; }

# every_id_once DIR FROM TO: the batches in DIR insert ids FROM..TO, each once
every_id_once() {
	run -0 bash -c "dump_events '$1' | awk -F'\t' '\$2 == \"I\" { print \$4 }' | sort -n"
	assert_output "$(seq "$2" "$3")"
}

@test "rotation truncates the next table only once every target batched it" {
	ins 1 5                                  # into event_0
	run -0 tp-vacuum -c "$CFG" --rotate-now  # event_1 is empty: drained
	assert_output ""
	[ "$(cur)" = 1 ]
	ins 6 8                                  # into event_1
	run -0 tp-vacuum -c "$CFG" --rotate-now
	[ "$(cur)" = 2 ]
	# event_0 is next: nobody batched it yet
	run -0 tp-vacuum -c "$CFG" --rotate-now -v
	assert_output --regexp "rotation postponed: target (replica|other) still needs event_0"
	[ "$(cur)" = 2 ]
	[ "$(events_in 0)" = 5 ]
	run -0 tp-batch -c "$CFG"
	run -0 tp-vacuum -c "$CFG" --rotate-now
	[ "$(cur)" = 0 ]
	[ "$(events_in 0)" = 0 ]
	[ "$(events_in 1)" = 3 ]
	every_id_once "$SPOOL/outbox/replica" 1 8
	every_id_once "$SPOOL/outbox/other" 1 8
}

@test "rotation waits for rotate_interval unless --rotate-now" {
	echo "rotate_interval = 1h" > "$BATS_TEST_TMPDIR/x"
	sed -i "/^spool = /r $BATS_TEST_TMPDIR/x" "$CFG"
	run -0 tp-vacuum -c "$CFG" -vv
	assert_output --partial "rotation not due"
	[ "$(cur)" = 0 ]
	run -0 tp-vacuum -c "$CFG" --rotate-now
	[ "$(cur)" = 1 ]
	# one rotation per run at most
	run -0 tp-vacuum -c "$CFG" --rotate-now
	[ "$(cur)" = 2 ]
}

@test "a target that has not batched blocks rotation and keeps its events" {
	ins 1 10
	run -0 tp-vacuum -c "$CFG" --rotate-now
	run -0 tp-vacuum -c "$CFG" --rotate-now
	[ "$(cur)" = 2 ]
	run -0 tp-batch -c "$CFG" --target replica
	for i in 1 2 3; do
		run -0 tp-vacuum -c "$CFG" --rotate-now
	done
	[ "$(cur)" = 2 ]
	[ "$(events_in 0)" = 10 ]
	run -0 tp-status -c "$CFG" --json
	[ "$(jq '.targets[] | select(.name == "other") | .backlog_events' <<< "$output")" = 10 ]
	[ "$(jq '.targets[] | select(.name == "replica") | .backlog_events' <<< "$output")" = 0 ]
	# the target comes back: its events were all there
	run -0 tp-batch -c "$CFG" --target other
	every_id_once "$SPOOL/outbox/other" 1 10
	run -0 tp-vacuum -c "$CFG" --rotate-now
	[ "$(cur)" = 0 ]
	[ "$(events_in 0)" = 0 ]
}

@test "a planned but unwritten batch blocks rotation" {
	ins 1 3
	run -0 tp-vacuum -c "$CFG" --rotate-now
	run -0 tp-vacuum -c "$CFG" --rotate-now
	run -0 tp-batch -c "$CFG"
	tp_psql "$DB" "UPDATE teleport.batch SET written = NULL WHERE target = 'replica'"
	run -0 tp-vacuum -c "$CFG" --rotate-now -v
	assert_output --partial "rotation postponed: target replica still needs event_0"
	[ "$(events_in 0)" = 3 ]
}

# A transaction that still writes into an old table holds ROW EXCLUSIVE
# on it: the ACCESS EXCLUSIVE lock is not granted and rotation waits.
@test "an open transaction writing into the table postpones its truncation; nothing is lost" {
	local fifo=$BATS_TEST_TMPDIR/fifo
	mkfifo "$fifo"
	"$TP_PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$TP_PGHOST" -U teleport -d "$DB" \
		< "$fifo" > "$BATS_TEST_TMPDIR/psql.log" 2>&1 3>&- &
	BG=$!
	exec 4> "$fifo"
	echo "BEGIN; INSERT INTO public.t VALUES (100, 'open');" >&4
	# wait until the open transaction holds its lock on event_0
	local i
	for ((i = 0; i < 300; i++)); do
		[ "$(tp_psql_admin "$DB" "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
			WHERE c.relname = 'event_0' AND l.mode = 'RowExclusiveLock' AND l.granted")" = 1 ] && break
		sleep 0.1
	done
	ins 1 4
	run -0 tp-vacuum -c "$CFG" --rotate-now
	run -0 tp-vacuum -c "$CFG" --rotate-now
	[ "$(cur)" = 2 ]
	run -0 tp-batch -c "$CFG"
	run -0 tp-vacuum -c "$CFG" --rotate-now -vv
	assert_output --partial "rotation postponed: event_0 is in use"
	[ "$(cur)" = 2 ]
	# the open transaction goes on (now into event_2) and commits
	echo "INSERT INTO public.t VALUES (101, 'open'); COMMIT;" >&4
	exec 4>&-
	wait "$BG"
	BG=
	run -0 tp-batch -c "$CFG"
	run -0 tp-vacuum -c "$CFG" --rotate-now
	[ "$(cur)" = 0 ]
	ins 5 6
	run -0 tp-batch -c "$CFG"
	run -0 bash -c "dump_events '$SPOOL/outbox/replica' | awk -F'\t' '\$2 == \"I\" { print \$4 }' | sort -n"
	assert_output "$(tp_psql "$DB" "SELECT id FROM public.t ORDER BY id")"
	run -0 bash -c "dump_events '$SPOOL/outbox/other' | awk -F'\t' '\$2 == \"I\" { print \$4 }' | sort -n"
	assert_output "$(tp_psql "$DB" "SELECT id FROM public.t ORDER BY id")"
}

@test "after rotations the event tables hold the backlog only, without dead tuples" {
	local round
	for round in 0 1 2 3; do
		ins $((round * 10 + 1)) $((round * 10 + 10))
		tp_psql "$DB" "UPDATE public.t SET v = 'u' WHERE id = $((round * 10 + 1))"
		tp_psql "$DB" "DELETE FROM public.t WHERE id = $((round * 10 + 2))"
		run -0 tp-batch -c "$CFG"
		run -0 tp-vacuum -c "$CFG" --rotate-now
	done
	run -0 tp-vacuum -c "$CFG" --rotate-now
	run -0 tp-vacuum -c "$CFG" --rotate-now
	[ "$(all_events)" = 0 ]
	ins 100 102                    # the backlog: not batched yet
	[ "$(all_events)" = 3 ]
	run -0 tp-status -c "$CFG" --json
	[ "$(jq '.targets[0].backlog_events' <<< "$output")" = 3 ]
	# capture and rotation only ever insert and truncate
	run -0 tp_psql "$DB" "SELECT sum(n_tup_ins) > 0, sum(n_tup_upd), sum(n_tup_del), sum(n_dead_tup)
		FROM pg_stat_user_tables WHERE schemaname = 'teleport' AND relname LIKE 'event\_%'"
	assert_output "t|0|0|0"
}

@test "spool files older than retention go; unsent and unapplied ones stay" {
	sed -i 's/^spool = .*/&\nretention = 1h/' "$CFG"
	printf '\n[source up]\n' >> "$CFG"
	tp-install -c "$CFG"
	local o=$SPOOL/outbox/replica i=$SPOOL/inbox/up q=$SPOOL/quarantine f
	mkdir -p "$o/sent" "$i/applied" "$q"
	for f in "$o/sent/0000000000000001.tar.zst" "$o/sent/0000000000000002.tar.zst" \
		"$o/0000000000000003.tar.zst" "$i/applied/0000000000000001.tar.zst" \
		"$i/0000000000000002.tar.zst" "$q/20240101T000000Z-x.tar.zst" \
		"$q/20240101T000000Z-x.tar.zst.why" "$o/.tmp-abcdef" "$o/sent/notes.txt"; do
		echo x > "$f"
		touch -d '2 hours ago' "$f"
	done
	echo x > "$o/sent/0000000000000004.tar.zst"
	echo x > "$i/applied/0000000000000003.tar.zst"
	echo x > "$q/20240101T000001Z-y.tar.zst"
	echo x > "$q/20240101T000001Z-y.tar.zst.why"
	run -0 tp-vacuum -c "$CFG"
	assert_output ""
	run -0 bash -c "cd '$SPOOL' && find outbox inbox quarantine -type f | sort"
	assert_output "$(printf '%s\n' \
		inbox/up/0000000000000002.tar.zst \
		inbox/up/applied/0000000000000003.tar.zst \
		outbox/replica/0000000000000003.tar.zst \
		outbox/replica/sent/0000000000000004.tar.zst \
		outbox/replica/sent/notes.txt \
		quarantine/20240101T000001Z-y.tar.zst \
		quarantine/20240101T000001Z-y.tar.zst.why)"
}

@test "batch records go in chunks once sent and old; the newest, unsent and recent stay" {
	sed -i 's/^spool = .*/&\nretention = 1h/' "$CFG"
	# 2500 old batches of replica, written and sent (no file left), then
	# 3 old ones whose files are still in the outbox, then 2 recent ones
	tp_psql "$DB" "INSERT INTO teleport.batch (target, seq, lo, hi, ev_lo, ev_hi, events, bytes, created, written)
		SELECT 'replica', g, pg_current_snapshot(), pg_current_snapshot(), 0, 0, 0, 0,
			now() - interval '1 day', now() - interval '1 day'
		FROM generate_series(1, 2505) g;
		INSERT INTO teleport.batch (target, seq, lo, hi, ev_lo, ev_hi, events, bytes, created, written)
		SELECT 'replica', g, pg_current_snapshot(), pg_current_snapshot(), 0, 0, 0, 0, now(), now()
		FROM generate_series(2506, 2507) g;
		INSERT INTO teleport.batch (target, seq, lo, hi, ev_lo, ev_hi, events, bytes, created, written)
		SELECT 'other', g, pg_current_snapshot(), pg_current_snapshot(), 0, 0, 0, 0,
			now() - interval '1 day', now() - interval '1 day'
		FROM generate_series(1, 5) g"
	mkdir -p "$SPOOL/outbox/replica"
	local s
	for s in 2501 2502 2503; do
		printf x > "$SPOOL/outbox/replica/$(printf %016d "$s").tar.zst"
	done
	run -0 tp-vacuum -c "$CFG" -vv
	assert_line --partial "deleted 1000 batch records of target replica"
	assert_line --partial "deleted 500 batch records of target replica"
	run -0 tp_psql "$DB" "SELECT target, min(seq), max(seq), count(*) FROM teleport.batch
		GROUP BY 1 ORDER BY 1"
	assert_output "$(printf '%s\n' 'other|5|5|1' 'replica|2501|2507|7')"
}

@test "the apply log goes in chunks past retention, keeping each source's newest line" {
	sed -i 's/^spool = .*/&\nretention = 1h/' "$CFG"
	printf '\n[source a]\n[source b]\n' >> "$CFG"
	tp-install -c "$CFG"
	tp_psql "$DB" "INSERT INTO teleport.apply_log (source, seq, kind, digest, events, applied_at)
		SELECT 'a', g, 'rows', 'd', 1, now() - interval '2 hours' FROM generate_series(1, 1500) g;
		INSERT INTO teleport.apply_log (source, seq, kind, digest, events, applied_at)
		SELECT 'a', g, 'rows', 'd', 1, now() FROM generate_series(1501, 1502) g;
		INSERT INTO teleport.apply_log (source, seq, kind, digest, events, applied_at)
		SELECT 'b', g, 'rows', 'd', 1, now() - interval '2 hours' FROM generate_series(1, 3) g"
	run -0 tp-vacuum -c "$CFG" -vv
	assert_line --partial "deleted 1000 apply log lines"
	assert_line --partial "deleted 502 apply log lines"
	run -0 tp_psql "$DB" "SELECT source, min(seq), max(seq), count(*) FROM teleport.apply_log
		GROUP BY 1 ORDER BY 1"
	assert_output "$(printf '%s\n' 'a|1501|1502|2' 'b|3|3|1')"
}

@test "the outcome is recorded; a second run waits for the lock (75)" {
	run -0 tp-vacuum -c "$CFG" --rotate-now
	run -0 jq -r '[.command, .exit, .summary, .error] | @tsv' "$SPOOL/state/tp-vacuum.json"
	assert_output $'tp-vacuum\t0\trotated to event_1; deleted 0 batch records, 0 apply log lines, 0 files\t'
	exec 5> "$SPOOL/lock/tp-vacuum.lock"
	flock -n 5
	run -75 tp-vacuum -c "$CFG"
	exec 5>&-
	run -0 jq -r '.exit' "$SPOOL/state/tp-vacuum.json"
	assert_output 75
}
