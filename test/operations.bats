#!/usr/bin/env bats
# Running it for real: one source, two targets, several cycles of writes and
# stage runs through contrib/cron/tp-cycle, one target paused for part of
# it. Nothing is lost, tp-vacuum reclaims what was confirmed and keeps what
# the paused target still needs, and tp-status shows the paused target's
# lag, then its recovery.

load helper

CYCLE=$BATS_TEST_DIRNAME/../contrib/cron/tp-cycle

setup_file() {
	tp_cluster_start
}

teardown_file() {
	tp_cluster_stop
}

setup() {
	W=$BATS_TEST_TMPDIR
	for db in osrc oa ob; do
		tp_createdb "$db"
		tp_psql "$db" "CREATE TABLE public.t (id int PRIMARY KEY, v text)"
	done
	mkdir -p "$W/drop_a" "$W/drop_b"
	tp_write_config "$W/src.ini" <<-EOF
	[node]
	name = src
	conninfo = $(tp_conninfo osrc)
	spool = $W/s
	retention = 1h
	max_lag = 1s
	[target a]
	tables = public.*
	endpoint = dir:$W/drop_a
	[target b]
	tables = public.*
	endpoint = dir:$W/drop_b
	EOF
	for n in a b; do
		tp_write_config "$W/$n.ini" <<-EOF
		[node]
		name = $n
		conninfo = $(tp_conninfo o$n)
		spool = $W/$n
		retention = 1h
		[source src]
		EOF
	done
	tp-install -c "$W/src.ini"
	tp-install -c "$W/a.ini"
	tp-install -c "$W/b.ini"
}

# write FROM TO: inserts, then updates and deletes of older rows
write() {
	tp_psql osrc "INSERT INTO public.t SELECT g, 'v' || g FROM generate_series($1, $2) g" \
		"UPDATE public.t SET v = v || '+' WHERE id % 7 = 0" \
		"DELETE FROM public.t WHERE id % 11 = 0"
}

# cycle NODE [DROP]: one round of that node's stages
cycle() {
	"$CYCLE" -c "$W/$1.ini" -n 1 -i 0 -b "$TP_BIN" ${2:+-f "$2"}
}

same() {
	local q="SELECT count(*) || ':' || md5(string_agg(t::text, ',' ORDER BY id)) FROM public.t"
	assert_equal "$(tp_psql "$1" "$q")" "$(tp_psql osrc "$q")"
}

@test "several cycles with one target paused: nothing lost, vacuum reclaims, status shows lag then recovery" {
	# both targets keep up
	for i in 1 2 3; do
		write $((i * 100)) $((i * 100 + 99))
		cycle src
		cycle a "$W/drop_a"
		cycle b "$W/drop_b"
	done
	same oa
	same ob
	run -0 tp-status -c "$W/src.ini" --json
	[ "$(jq -r '.healthy' <<< "$output")" = true ]

	# target b's receiver pauses: its batches pile up in its drop folder
	for i in 4 5 6; do
		write $((i * 100)) $((i * 100 + 99))
		cycle src
		cycle a "$W/drop_a"
	done
	same oa
	run -0 tp-status -c "$W/b.ini" --json
	[ "$(jq -r '.sources[0].applied' <<< "$output")" = 3 ]
	# and its sender pauses too: batches stay in the source's outbox
	mv "$W/drop_b" "$W/drop_b.away"
	write 700 799
	cycle src || true
	cycle a "$W/drop_a"
	sleep 2  # let the undelivered change age past max_lag = 1s
	run -1 tp-status -c "$W/src.ini" --json
	[ "$(jq -r '.healthy' <<< "$output")" = false ]
	[ "$(jq -r '.targets[] | select(.name == "a") | .unsent_batches' <<< "$output")" = 0 ]
	[ "$(jq -r '.targets[] | select(.name == "b") | .unsent_batches' <<< "$output")" -ge 1 ]
	[ "$(jq -r '.targets[] | select(.name == "b") | .lag_seconds >= 1' <<< "$output")" = true ]

	# vacuum: a's confirmed files age past retention and go; b's unsent stay
	find "$W/s/outbox" "$W/a/inbox" -type f -path '*/sent/*' -o -type f -path '*/applied/*' |
		xargs -r touch -d '2 hours ago'
	a_sent=$(find "$W/s/outbox/a/sent" -type f | wc -l)
	[ "$a_sent" -ge 7 ]
	b_unsent=$(find "$W/s/outbox/b" -maxdepth 1 -type f -name '*.tar*' | wc -l)
	events_before=$(tp_psql osrc "SELECT count(*) FROM teleport.event")
	for i in 1 2 3; do
		write $((i * 1000)) $((i * 1000 + 9))
		cycle src || true
		tp-vacuum -c "$W/src.ini" --rotate-now
	done
	run -0 find "$W/s/outbox/a/sent" -type f -mmin +60
	assert_output ""
	[ "$(find "$W/s/outbox/b" -maxdepth 1 -type f -name '*.tar*' | wc -l)" -ge "$b_unsent" ]
	[ "$(tp_psql osrc "SELECT count(*) FROM teleport.event")" -lt "$events_before" ]
	tp-vacuum -c "$W/a.ini"
	run -0 find "$W/a/inbox" -path '*/applied/*' -type f -mmin +60
	assert_output ""

	# b comes back: everything arrives, nothing twice, status recovers
	mv "$W/drop_b.away" "$W/drop_b"
	for i in 1 2; do
		cycle src
		cycle a "$W/drop_a"
		cycle b "$W/drop_b"
	done
	same oa
	same ob
	run -0 tp-status -c "$W/src.ini" --json
	[ "$(jq -r '.healthy' <<< "$output")" = true ]
	[ "$(jq -r '.targets[] | select(.name == "b") | .unsent_batches' <<< "$output")" = 0 ]
	run -0 tp-status -c "$W/b.ini" --json
	[ "$(jq -r '.sources[0].waiting_batches' <<< "$output")" = 0 ]
	[ "$(tp_psql ob "SELECT count(*) FROM teleport.apply_log")" = \
		"$(tp_psql osrc "SELECT last_seq FROM teleport.target WHERE name = 'b'")" ]
}
