#!/usr/bin/env bats
# tp-status: the numbers of a known sequence of batch, send, receive and
# apply runs, on both nodes; JSON and Prometheus renderings; a batch held
# for a schema change; exit 1 past max_lag or after a failed run, 69
# without a database; and the outcome record every command leaves.

load helper

setup_file() {
	tp_cluster_start
}

teardown_file() {
	tp_cluster_stop
}

setup() {
	SRC=stsrc_$BATS_TEST_NUMBER
	DST=stdst_$BATS_TEST_NUMBER
	tp_createdb "$SRC"
	tp_createdb "$DST"
	W=$BATS_TEST_TMPDIR
	for db in "$SRC" "$DST"; do
		tp_psql "$db" "CREATE TABLE public.t (id int PRIMARY KEY, v text)"
	done
	tp_pair_config "public.*"
	mkdir -p "$W/drop"
	tp-install -c "$W/src.ini"
	tp-install -c "$W/dst.ini"
}

ins() { tp_psql "$SRC" "INSERT INTO public.t SELECT g, 'value ' || g FROM generate_series($1, $2) g"; }

# field FILTER: one value of the JSON in $output
field() { jq -r "$1" <<< "$output"; }

# The known sequence: batches 1 and 2 sent, 3 written, 4 events not batched.
known_sequence() {
	ins 1 1
	tp-batch -c "$W/src.ini"
	ins 2 3
	tp-batch -c "$W/src.ini"
	tp-send -c "$W/src.ini"
	ins 4 6
	tp-batch -c "$W/src.ini"
	local i
	for i in 7 8 9 10; do ins "$i" "$i"; done
}

@test "source side: last cut, written, sent, unsent and backlog" {
	known_sequence
	run -0 tp-status -c "$W/src.ini" --json
	[ "$(field '.node') $(field '.healthy') $(field '.database_up')" = "src true true" ]
	[ "$(field '.targets | length')" = 1 ]
	[ "$(field '.targets[0] | [.name, .last_batch.seq, .written, .sent, .unsent_batches,
		.backlog_events] | @tsv')" = $'replica\t3\t3\t2\t1\t4' ]
	# a target's schema waits are known on the target only
	[ "$(field '.targets[0] | has("ddl_waiting") and .ddl_waiting == null')" = true ]
	[ "$(field '.targets[0].backlog_bytes')" = \
		"$(tp_psql "$SRC" "SELECT sum(octet_length(t::text)) FROM public.t WHERE id >= 7")" ]
	[ "$(field '.targets[0].last_batch.created')" = \
		"$(tp_psql "$SRC" "SELECT to_char(created AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')
			FROM teleport.batch WHERE seq = 3")" ]
	[ "$(field '.targets[0].unsent_bytes')" = "$(stat -c %s "$W"/sspool/outbox/replica/0000000000000003.tar*)" ]
	run -0 tp-status -c "$W/src.ini"
	assert_line --index 0 --regexp '^node src at .*: healthy$'
	assert_line --regexp '^replica +3 [0-9TZ:-]+ +3 +2 +1 +4 '
}

@test "target side: received, applied, waiting and lag" {
	known_sequence
	run -0 tp-status -c "$W/dst.ini" --json
	[ "$(field '.sources[0] | [.name, .received, .applied, .waiting_batches, .applied_at] | @tsv')" = \
		$'src\t0\t0\t0\t' ]
	tp-recv -c "$W/dst.ini" --from "$W/drop"
	run -0 tp-status -c "$W/dst.ini" --json
	[ "$(field '.sources[0] | [.received, .applied, .waiting_batches] | @tsv')" = $'2\t0\t2' ]
	[ "$(field '.sources[0].lag_seconds >= 0')" = true ]
	tp-apply -c "$W/dst.ini"
	run -0 tp-status -c "$W/dst.ini" --json
	[ "$(field '.sources[0] | [.received, .applied, .waiting_batches] | @tsv')" = $'2\t2\t0' ]
	[ "$(field '.sources[0].applied_at')" = \
		"$(tp_psql "$DST" "SELECT to_char(applied_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')
			FROM teleport.applied WHERE source = 'src'")" ]
	[ "$(field '.sources[0].lag_seconds >= 0')" = true ]
	[ "$(field '.sources[0] | [.ddl_waiting, .ddl_waiting_since, .ddl_waiting_seconds,
		.ddl_waiting_sqlstate, .ddl_waiting_reason] | @json')" = '[0,null,0,null,null]' ]
	[ "$(field '.healthy')" = true ]
	run -0 tp-status -c "$W/dst.ini"
	assert_line --regexp '^src +2 +2 [0-9TZ:-]+ +0 +[0-9]+s +-$'
}

@test "--prometheus writes the textfile atomically, in exposition format" {
	known_sequence
	mkdir "$W/prom"
	run -0 tp-status -c "$W/src.ini" --prometheus "$W/prom/teleport.prom"
	assert_output ""
	run -0 ls -A "$W/prom"
	assert_output teleport.prom                  # no temporary file left
	[ "$(stat -c %a "$W/prom/teleport.prom")" = 644 ]
	local f=$W/prom/teleport.prom name
	# every line is a comment or a sample; every family has HELP and TYPE
	run -1 grep -vE '^(# (HELP|TYPE) [a-z_]+ .+|[a-z_]+\{([a-z]+="[^"]*",?)+\} -?[0-9.e+]+)$' "$f"
	assert_output ""
	for name in teleport_up teleport_healthy teleport_target_last_batch_seq \
		teleport_target_sent_seq teleport_target_backlog_events teleport_target_backlog_bytes \
		teleport_target_unsent_batches teleport_target_lag_seconds teleport_command_exit_code \
		teleport_command_error_since_timestamp_seconds; do
		grep -qx "# TYPE $name gauge" "$f"
		grep -q "^# HELP $name " "$f"
	done
	grep -qx 'teleport_target_backlog_events{node="src",target="replica"} 4' "$f"
	grep -qx 'teleport_target_sent_seq{node="src",target="replica"} 2' "$f"
	grep -qx 'teleport_command_exit_code{node="src",command="tp-send"} 0' "$f"
	grep -qx 'teleport_up{node="src"} 1' "$f"
	# the target's file
	tp-recv -c "$W/dst.ini" --from "$W/drop"
	run -0 tp-status -c "$W/dst.ini" --prometheus "$W/prom/teleport.prom"
	grep -qx 'teleport_source_received_seq{node="replica",source="src"} 2' "$f"
	grep -qx 'teleport_source_waiting_batches{node="replica",source="src"} 2' "$f"
}

# A batch of src held for a missing column "v" on the target: batch 1,
# received, not applied.
held_batch() {
	tp_psql "$DST" "ALTER TABLE public.t DROP COLUMN v"
	ins 1 2
	tp-batch -c "$W/src.ini"
	tp-send -c "$W/src.ini"
	tp-recv -c "$W/dst.ini" --from "$W/drop"
	run -75 tp-apply -c "$W/dst.ini"
}

held_reason='batch src/1 line 2: preparing INSERT INTO "public"."t": 42703: column "v" of relation "t" does not exist'

@test "a batch held for a schema change: its number, SQLSTATE, reason and since" {
	held_batch
	local held=$W/dspool/inbox/src/held.json
	[ "$(jq -r '[.source, .seq, .sqlstate, .reason] | @tsv' "$held")" = $'src\t1\t42703\t'"$held_reason" ]
	run -0 tp-status -c "$W/dst.ini" --json
	[ "$(field '.sources[0] | [.applied, .waiting_batches, .ddl_waiting, .ddl_waiting_sqlstate,
		.ddl_waiting_reason] | @tsv')" = $'0\t1\t1\t42703\t'"$held_reason" ]
	# since: when the run that found it held ran, as the record says
	[ "$(field '.sources[0].ddl_waiting_since')" = "$(jq -r .since "$held")" ]
	[ "$(jq -r --arg s "$(jq -r .since "$held")" '.start <= $s and $s <= .end' \
		"$W/dspool/state/tp-apply.json")" = true ]
	[ "$(field '.healthy')" = true ]                 # not for longer than max_lag yet
	run -0 tp-status -c "$W/dst.ini"
	assert_line --regexp '^src +1 +0 [0-9TZ:-]+ +1 +[0-9]+s +1$'
	assert_line --regexp "^  src: batch 1 waits for a schema change since [0-9TZ:-]+ \([0-9dhms]+\): "
	assert_line --partial ": $held_reason"
}

@test "a schema wait longer than max_lag is unhealthy; since is kept across runs; cleared once applied" {
	held_batch
	local held=$W/dspool/inbox/src/held.json prom=$W/m.prom
	# pretend the wait began long ago: the next run, held again, keeps that
	jq '.since = "2001-02-03T04:05:06Z"' "$held" > "$W/x" && mv "$W/x" "$held"
	run -75 tp-apply -c "$W/dst.ini"
	[ "$(jq -r '[.seq, .since] | @tsv' "$held")" = $'1\t2001-02-03T04:05:06Z' ]
	run -1 tp-status -c "$W/dst.ini" --json
	[ "$(field '.sources[0] | [.ddl_waiting, .ddl_waiting_since] | @tsv')" = $'1\t2001-02-03T04:05:06Z' ]
	[ "$(field '(.time | fromdateiso8601) - 981173106 == .sources[0].ddl_waiting_seconds')" = true ]
	[ "$(jq -r --arg r "$held_reason" '.problems == ["source src: batch 1 has waited "
		+ (.sources[0].ddl_waiting_seconds | tostring)
		+ "s for a schema change, more than max_lag 600s: " + $r]' <<< "$output")" = true ]
	run -1 tp-status -c "$W/dst.ini"
	assert_line --index 0 --regexp '^node replica at .*: UNHEALTHY$'
	[ "$(grep '^  src: ' <<< "$output" | sed -E 's/ \([0-9dhms]+\): / (AGE): /')" = \
		"  src: batch 1 waits for a schema change since 2001-02-03T04:05:06Z (AGE): $held_reason" ]
	run -1 tp-status -c "$W/dst.ini" --prometheus "$prom"
	run -1 grep -vE '^(# (HELP|TYPE) [a-z_]+ .+|[a-z_]+\{([a-z]+="[^"]*",?)+\} -?[0-9.e+]+)$' "$prom"
	local name
	for name in teleport_source_ddl_waiting_seq teleport_source_ddl_waiting_seconds; do
		grep -qx "# TYPE $name gauge" "$prom"
		grep -q "^# HELP $name " "$prom"
	done
	grep -qx 'teleport_source_ddl_waiting_seq{node="replica",source="src"} 1' "$prom"
	grep -qxE 'teleport_source_ddl_waiting_seconds\{node="replica",source="src"\} [1-9][0-9]*' "$prom"
	# the column arrives: the batch applies, the wait is over
	tp_psql "$DST" "ALTER TABLE public.t ADD COLUMN v text"
	run -0 tp-apply -c "$W/dst.ini"
	[ ! -e "$held" ]
	run -0 tp-status -c "$W/dst.ini" --json --prometheus "$prom"
	[ "$(field '.sources[0] | [.applied, .ddl_waiting, .ddl_waiting_since, .ddl_waiting_seconds,
		.ddl_waiting_sqlstate, .ddl_waiting_reason] | @json')" = '[1,0,null,0,null,null]' ]
	[ "$(field '.healthy')" = true ]
	grep -qx 'teleport_source_ddl_waiting_seq{node="replica",source="src"} 0' "$prom"
	grep -qx 'teleport_source_ddl_waiting_seconds{node="replica",source="src"} 0' "$prom"
	run -0 tp-status -c "$W/dst.ini"
	assert_line --regexp '^src +1 +1 [0-9TZ:-]+ +0 +[0-9]+s +-$'
	refute_line --regexp '^  src: '
}

@test "a hold record the ledger has passed is stale: ignored, then removed by tp-apply" {
	held_batch
	local held=$W/dspool/inbox/src/held.json
	cp "$held" "$W/held.copy"
	tp_psql "$DST" "ALTER TABLE public.t ADD COLUMN v text"
	run -0 tp-apply -c "$W/dst.ini"
	cp "$W/held.copy" "$held"                  # as if a run died before removing it
	run -0 tp-status -c "$W/dst.ini" --json
	[ "$(field '.sources[0] | [.applied, .ddl_waiting] | @tsv')" = $'1\t0' ]
	run -0 tp-apply -c "$W/dst.ini"
	[ ! -e "$held" ]
}

@test "exit 1 once the oldest undelivered change is older than max_lag" {
	known_sequence
	touch -d '2 hours ago' "$W"/sspool/outbox/replica/*.tar*
	run -1 tp-status -c "$W/src.ini" --json
	[ "$(field '.healthy')" = false ]
	[ "$(field '.targets[0].lag_seconds >= 7200')" = true ]
	assert_output --partial '"target replica: lag '
	sed -i 's/^spool = .*/&\nmax_lag = 3h/' "$W/src.ini"
	run -0 tp-status -c "$W/src.ini"
}

@test "a failed run makes the node unhealthy, keeps its error since, and clears on success" {
	sed -i "s|^endpoint = .*|endpoint = dir:$W/nowhere|" "$W/src.ini"
	ins 1 1
	tp-batch -c "$W/src.ini"
	run -69 tp-send -c "$W/src.ini"
	local state=$W/sspool/state/tp-send.json
	[ "$(jq -r '.exit' "$state")" = 69 ]
	[ "$(jq -r '.error_since == .start' "$state")" = true ]
	# pretend the failures began an hour ago: a new failure keeps that
	jq '.error_since = "2001-02-03T04:05:06Z"' "$state" > "$W/x" && mv "$W/x" "$state"
	run -69 tp-send -c "$W/src.ini"
	[ "$(jq -r '.error_since' "$state")" = 2001-02-03T04:05:06Z ]
	[ "$(jq -r '.error' "$state")" = "$(printf '%s\n' "$output" | tail -1 | sed 's/^tp-send: error: //')" ]
	run -1 tp-status -c "$W/src.ini"
	assert_line --regexp '^  problem: tp-send: exit 69: '
	assert_line --regexp '^tp-send +[0-9TZ:-]+ +69  .* \(since 2001-02-03T04:05:06Z\)$'
	mkdir "$W/nowhere"
	run -0 tp-send -c "$W/src.ini"
	[ "$(jq -r '[.exit, .error, .error_since, (.last_ok != null)] | @tsv' "$state")" = $'0\t\t\ttrue' ]
	run -0 tp-status -c "$W/src.ini"
}

@test "exit 75 (locked, not ready) is unhealthy only once it lasts longer than max_lag" {
	mkdir -p "$W/sspool/state"
	printf '{"command": "tp-apply", "start": "%s", "end": "%s", "exit": 75, "summary": null, "error": "batch 3 missing", "error_since": "%s", "last_ok": null}\n' \
		"$(date -u +%FT%TZ)" "$(date -u +%FT%TZ)" "$(date -u +%FT%TZ)" > "$W/sspool/state/tp-apply.json"
	run -0 tp-status -c "$W/src.ini"
	sed -i 's/"error_since": "[^"]*"/"error_since": "2001-02-03T04:05:06Z"/' "$W/sspool/state/tp-apply.json"
	run -1 tp-status -c "$W/src.ini"
	assert_line '  problem: tp-apply: exit 75: batch 3 missing'
}

@test "every command leaves its outcome" {
	known_sequence
	tp-recv -c "$W/dst.ini" --from "$W/drop"
	tp-apply -c "$W/dst.ini"
	tp-vacuum -c "$W/src.ini"
	local c
	for c in tp-install tp-batch tp-send tp-vacuum; do
		[ "$(jq -r '[.command, .exit, (.start <= .end), .error] | @tsv' "$W/sspool/state/$c.json")" = \
			"$c"$'\t0\ttrue\t' ]
	done
	for c in tp-install tp-recv tp-apply; do
		[ "$(jq -r '[.command, .exit] | @tsv' "$W/dspool/state/$c.json")" = "$c"$'\t0' ]
	done
	run -0 tp-status -c "$W/src.ini" --json
	[ "$(field '[.commands[].command] | join(" ")')" = "tp-batch tp-install tp-send tp-vacuum" ]
}

@test "69 when the database is unreachable; the spool facts and metrics still come out" {
	known_sequence
	sed -i "s|^conninfo = .*|conninfo = host=$W/no-such-socket-dir dbname=x user=teleport|" "$W/src.ini"
	run -69 tp-status -c "$W/src.ini" --json --prometheus "$W/m.prom"
	assert_output --partial 'could not connect to the database'
	[ "$(jq -r '.database_up, .healthy' <<< "$(printf '%s\n' "$output" | grep -v '^tp-status: ')")" = $'false\nfalse' ]
	grep -qx 'teleport_up{node="src"} 0' "$W/m.prom"
	grep -qx 'teleport_target_unsent_batches{node="src",target="replica"} 1' "$W/m.prom"
}

@test "--syslog and log = syslog are accepted; a bad log value is a config error" {
	run -0 tp-status -c "$W/src.ini" --syslog --json
	sed -i 's/^spool = .*/&\nlog = syslog/' "$W/src.ini"
	run -0 tp-status -c "$W/src.ini" --json
	sed -i 's/^log = syslog/log = loud/' "$W/src.ini"
	run -78 tp-status -c "$W/src.ini"
	assert_output --regexp 'src.ini:[0-9]+: log: "loud" is not stderr or syslog'
}

# cron_lines FILE: the commands of a crontab, pointed at the test's
# binaries and folders
cron_lines() {
	grep -vE '^(#|[A-Z_]+=|$)' "$1" | sed -E 's/^([^ ]+ +){5}[^ ]+ +//' |
		sed -e "s|/usr/local/bin/|$TP_BIN/|g" -e "s|/srv/teleport/drop|$W/drop|g" \
			-e "s|/var/lib/prometheus/node-exporter|$W/prom|g"
}

@test "the contrib crontabs run as written: changes arrive, status is healthy" {
	mkdir -p "$W/prom"
	ins 1 5
	local line n=0
	while IFS= read -r line; do
		TP_CONFIG=$W/src.ini run -0 bash -c "$line"
		assert_output ""
		n=$((n + 1))
	done < <(cron_lines "$BATS_TEST_DIRNAME/../contrib/cron/crontab.source")
	while IFS= read -r line; do
		TP_CONFIG=$W/dst.ini run -0 bash -c "$line"
		assert_output ""
		n=$((n + 1))
	done < <(cron_lines "$BATS_TEST_DIRNAME/../contrib/cron/crontab.target")
	((n >= 7))
	[ "$(tp_psql "$DST" "SELECT string_agg(id::text, ',' ORDER BY id) FROM public.t")" = 1,2,3,4,5 ]
	grep -qx 'teleport_healthy{node="replica"} 1' "$W/prom/teleport.prom"
}
