#!/usr/bin/env bats
# End to end: real databases, the non-superuser role teleport, the real
# commands chained through a shared folder (tp-batch, tp-send, tp-recv
# --from, tp-apply) while concurrent clients write; at the end every target
# table equals its source table (row count and md5 of the ordered rows),
# the ledger counts every batch once, and nothing is left in transit.

load helper
load batch_helper       # dump_events
load e2e_helper

setup_file() {
	tp_cluster_start
}

teardown_file() {
	tp_cluster_stop
}

setup() {
	T=$BATS_TEST_TMPDIR
	N=e2e$BATS_TEST_NUMBER
}

teardown() {
	clients_kill
}

# node_ini FILE NAME DB: a config with its [node] section; sections are appended
node_ini() {
	printf '[node]\nname = %s\nconninfo = %s\nspool = %s\n' "$2" "$(tp_conninfo "$3")" "$T/spool-$2" > "$1"
}

# target_ini FILE NAME ENDPOINT TABLES [extra lines]: append a [target]
target_ini() {
	local f=$1 name=$2 ep=$3 tables=$4
	shift 4
	printf '\n[target %s]\ntables = %s\nendpoint = dir:%s\ntoken_file = %s\n' \
		"$name" "$tables" "$ep" "$T/token-$name" >> "$f"
	local l
	for l in "$@"; do printf '%s\n' "$l" >> "$f"; done
}

# source_ini FILE NAME TOKENFILE: append a [source]
source_ini() {
	printf '\n[source %s]\ntoken_file = %s\n' "$2" "$3" >> "$1"
}

token() {
	head -c 24 /dev/urandom | base64 > "$T/token-$1"
	chmod 600 "$T/token-$1"
}

# in_transit DIR...: batch files still lying in these folders (not below)
in_transit() {
	find "$@" -maxdepth 1 -type f 2> /dev/null | grep -c . || true
}

@test "50,000+ mixed changes from 4 concurrent clients, replicated while they write: target equals source" {
	tp_createdb "${N}_src"
	tp_createdb "${N}_dst"
	for db in "${N}_src" "${N}_dst"; do
		{ shop_ddl public; sales_ddl sales; } | tp_psql "$db"
	done
	workload_sql | tp_psql "${N}_src"
	token replica
	node_ini "$T/src.ini" src "${N}_src"
	target_ini "$T/src.ini" replica "$T/drop" "public.*, sales.*" "batch_max_events = 2000"
	node_ini "$T/dst.ini" replica "${N}_dst"
	source_ini "$T/dst.ini" src "$T/token-replica"
	mkdir "$T/drop"
	tp-install -c "$T/src.ini"
	tp-install -c "$T/dst.ini"

	client "${N}_src" "shop(1, 3000)"
	client "${N}_src" "shop(2, 3000)"
	client "${N}_src" "sales(3, 2600)"
	client "${N}_src" "long(4, 6)"
	rounds=0
	while clients_running && ((rounds < 600)); do
		pipeline "$T/src.ini" "$T/dst.ini" "$T/drop"
		rounds=$((rounds + 1))
		sleep 0.2
	done
	clients_wait
	echo "# $rounds rounds while the clients wrote, $(ledger "${N}_dst" src) batches applied by then" >&3
	# drain: until a round cuts nothing new and all of it is applied
	prev=-1
	for ((i = 0; i < 20; i++)); do
		pipeline "$T/src.ini" "$T/dst.ini" "$T/drop"
		cut=$(last_cut "${N}_src" replica)
		[[ $cut != "$prev" || $(ledger "${N}_dst" src) != "$cut" ]] || break
		prev=$cut
	done

	events=$(events_cut "${N}_src" replica)
	echo "# $events changes in $cut batches" >&3
	[ "$events" -ge 50000 ]
	[ "$cut" -ge 25 ]
	run -0 ledger "${N}_dst" src
	assert_output "$cut"
	run -0 tp_psql "${N}_dst" "SELECT count(*) || ' ' || sum(events) || ' ' || count(DISTINCT seq) || ' ' || max(seq)
		FROM teleport.apply_log WHERE source = 'src'"
	assert_output "$cut $events $cut $cut"
	for t in public.customers public.orders public.order_items public.oddities \
		sales.invoices sales.invoice_lines; do
		same "${N}_src" "${N}_dst" "$t"
	done
	# the key updates and truncates did happen (and were compared above)
	run -0 bash -c "dump_events '$T/spool-replica/inbox/src/applied' | awk -F'\t' '\$2 == \"T\"' | grep -c ."
	[ "$output" -gt 0 ]
	run -0 tp_psql "${N}_src" "SELECT count(*) > 0 FROM public.customers WHERE id > 1000000000"
	assert_output t
	run -0 tp_psql "${N}_src" "SELECT count(*) > 0 FROM public.order_items WHERE line > 100"
	assert_output t
	[ "$(in_transit "$T/drop" "$T/spool-replica/inbox/src" "$T/spool-src/outbox/replica")" = 0 ]
}

@test "two sources into one target: each source's tables arrive, each ledger counts its own batches" {
	tp_createdb "${N}_s1"
	tp_createdb "${N}_s2"
	tp_createdb "${N}_hub"
	shop_ddl public | tp_psql "${N}_s1"
	sales_ddl sales | tp_psql "${N}_s2"
	{ shop_ddl public; sales_ddl sales; } | tp_psql "${N}_hub"
	workload_sql | tp_psql "${N}_s1"
	workload_sql | tp_psql "${N}_s2"
	token s1hub
	token s2hub
	mkdir "$T/drop"
	# one shared folder, one token per source
	node_ini "$T/s1.ini" s1 "${N}_s1"
	target_ini "$T/s1.ini" hub "$T/drop" "public.*" "batch_max_events = 500"
	sed -i "s|token-hub|token-s1hub|" "$T/s1.ini"
	node_ini "$T/s2.ini" s2 "${N}_s2"
	target_ini "$T/s2.ini" hub "$T/drop" "sales.*" "batch_max_events = 500"
	sed -i "s|token-hub|token-s2hub|" "$T/s2.ini"
	node_ini "$T/hub.ini" hub "${N}_hub"
	source_ini "$T/hub.ini" s1 "$T/token-s1hub"
	source_ini "$T/hub.ini" s2 "$T/token-s2hub"
	for c in s1 s2 hub; do tp-install -c "$T/$c.ini"; done

	client "${N}_s1" "shop(1, 500)"
	client "${N}_s1" "shop(2, 500)"
	client "${N}_s2" "sales(3, 800)"
	round() {
		tp tp-batch -c "$T/s1.ini" && tp tp-batch -c "$T/s2.ini" &&
			tp tp-send -c "$T/s1.ini" && tp tp-send -c "$T/s2.ini" &&
			tp tp-recv -c "$T/hub.ini" --from "$T/drop" && tp tp-apply -c "$T/hub.ini"
	}
	for ((i = 0; i < 300; i++)); do
		clients_running || break
		round
		sleep 0.2
	done
	clients_wait
	prev=-1
	for ((i = 0; i < 20; i++)); do
		round
		cut="$(last_cut "${N}_s1" hub) $(last_cut "${N}_s2" hub)"
		[[ $cut != "$prev" || "$(ledger "${N}_hub" s1) $(ledger "${N}_hub" s2)" != "$cut" ]] || break
		prev=$cut
	done
	read -r cut1 cut2 <<< "$cut"
	echo "# s1: $cut1 batches, $(events_cut "${N}_s1" hub) changes; s2: $cut2 batches, $(events_cut "${N}_s2" hub) changes" >&3
	[ "$cut1" -ge 2 ] && [ "$cut2" -ge 2 ]
	run -0 tp_psql "${N}_hub" "SELECT string_agg(source || ':' || seq, ' ' ORDER BY source) FROM teleport.applied"
	assert_output "s1:$cut1 s2:$cut2"
	for t in public.customers public.orders public.order_items public.oddities; do
		same "${N}_s1" "${N}_hub" "$t"
	done
	for t in sales.invoices sales.invoice_lines; do
		same "${N}_s2" "${N}_hub" "$t"
	done
	[ "$(in_transit "$T/drop" "$T/spool-hub/inbox/s1" "$T/spool-hub/inbox/s2")" = 0 ]
}

@test "two targets from one source with different globs: each gets its tables and nothing else" {
	tp_createdb "${N}_src"
	tp_createdb "${N}_a"
	tp_createdb "${N}_b"
	{ shop_ddl public; sales_ddl sales; } | tp_psql "${N}_src"
	workload_sql | tp_psql "${N}_src"
	# a: public.* as is; b: sales.* into the schema copy. Each also has
	# decoys named like the other's tables, which must stay empty.
	{ shop_ddl public; sales_ddl sales; } | tp_psql "${N}_a"
	{ shop_ddl public; sales_ddl copy; sales_ddl sales; } | tp_psql "${N}_b"
	token ta
	token tb
	mkdir "$T/drop-a" "$T/drop-b"
	node_ini "$T/src.ini" src "${N}_src"
	target_ini "$T/src.ini" ta "$T/drop-a" "public.*" "batch_max_events = 700"
	target_ini "$T/src.ini" tb "$T/drop-b" "sales.*" "apply_schema = copy" "batch_max_events = 300"
	node_ini "$T/a.ini" ta "${N}_a"
	source_ini "$T/a.ini" src "$T/token-ta"
	node_ini "$T/b.ini" tb "${N}_b"
	source_ini "$T/b.ini" src "$T/token-tb"
	for c in src a b; do tp-install -c "$T/$c.ini"; done

	client "${N}_src" "shop(1, 500)"
	client "${N}_src" "sales(2, 600)"
	client "${N}_src" "shop(3, 300)"
	round() {
		tp tp-batch -c "$T/src.ini" && tp tp-send -c "$T/src.ini" &&
			tp tp-recv -c "$T/a.ini" --from "$T/drop-a" && tp tp-apply -c "$T/a.ini" &&
			tp tp-recv -c "$T/b.ini" --from "$T/drop-b" && tp tp-apply -c "$T/b.ini"
	}
	for ((i = 0; i < 300; i++)); do
		clients_running || break
		round
		sleep 0.2
	done
	clients_wait
	prev=-1
	for ((i = 0; i < 20; i++)); do
		round
		cut="$(last_cut "${N}_src" ta) $(last_cut "${N}_src" tb)"
		[[ $cut != "$prev" || "$(ledger "${N}_a" src) $(ledger "${N}_b" src)" != "$cut" ]] || break
		prev=$cut
	done
	read -r cuta cutb <<< "$cut"
	echo "# ta: $cuta batches, $(events_cut "${N}_src" ta) changes; tb: $cutb batches, $(events_cut "${N}_src" tb) changes" >&3
	run -0 ledger "${N}_a" src
	assert_output "$cuta"
	run -0 ledger "${N}_b" src
	assert_output "$cutb"

	for t in public.customers public.orders public.order_items public.oddities; do
		same "${N}_src" "${N}_a" "$t"
	done
	for t in invoices invoice_lines; do
		same "${N}_src" "${N}_b" "sales.$t" "copy.$t"
	done
	# nothing else: the decoys are empty, and the batches named only the
	# target's own tables
	run -0 tp_psql "${N}_a" "SELECT (SELECT count(*) FROM sales.invoices) + (SELECT count(*) FROM sales.invoice_lines)"
	assert_output 0
	run -0 tp_psql "${N}_b" "SELECT (SELECT count(*) FROM public.customers) + (SELECT count(*) FROM public.orders)
		+ (SELECT count(*) FROM public.order_items) + (SELECT count(*) FROM public.oddities)
		+ (SELECT count(*) FROM sales.invoices) + (SELECT count(*) FROM sales.invoice_lines)"
	assert_output 0
	run -0 bash -c "dump_events '$T/spool-ta/inbox/src/applied' | cut -f3 | sort -u"
	assert_output "public.customers
public.oddities
public.order_items
public.orders"
	run -0 bash -c "dump_events '$T/spool-tb/inbox/src/applied' | cut -f3 | sort -u"
	assert_output "copy.invoice_lines
copy.invoices"
	[ "$(in_transit "$T/drop-a" "$T/drop-b" "$T/spool-ta/inbox/src" "$T/spool-tb/inbox/src")" = 0 ]
}

# kill9 CMD ARGS...: run a command in the background and kill -9 it after a
# random 0-80 ms (it may have finished by then); counts real kills in KILLS
kill9() {
	if (
		"$@" > /dev/null 2>&1 3>&- &
		pid=$!
		sleep "0.$(printf '%03d' $((RANDOM % 80)))"
		kill -9 "$pid" || exit 1
		wait "$pid"
		exit 0
	) 2> /dev/null; then
		KILLS[$1]=$((${KILLS[$1]:-0} + 1))
	fi
}

@test "kill -9 of every command at random points while clients write, then re-runs: nothing lost, nothing doubled" {
	tp_createdb "${N}_src"
	tp_createdb "${N}_dst"
	for db in "${N}_src" "${N}_dst"; do
		{ ticks_ddl; shop_ddl public; } | tp_psql "$db"
	done
	workload_sql | tp_psql "${N}_src"
	token replica
	mkdir "$T/drop"
	node_ini "$T/src.ini" src "${N}_src"
	target_ini "$T/src.ini" replica "$T/drop" "public.*" "batch_max_events = 400"
	node_ini "$T/dst.ini" replica "${N}_dst"
	source_ini "$T/dst.ini" src "$T/token-replica"
	tp-install -c "$T/src.ini"
	tp-install -c "$T/dst.ini"

	seed=${E2E_SEED:-$$}
	RANDOM=$seed
	echo "# seed $seed (E2E_SEED=$seed repeats the kill pattern)" >&3
	client "${N}_src" "ticks(1, 2500)"
	client "${N}_src" "ticks(2, 2500)"
	client "${N}_src" "shop(3, 400)"
	declare -A KILLS=()
	for ((i = 0; i < 100; i++)); do
		# each command is killed two times out of three, else runs whole
		for step in batch send recv apply; do
			case $step in
			batch) cmd=(tp-batch -c "$T/src.ini") ;;
			send) cmd=(tp-send -c "$T/src.ini") ;;
			recv) cmd=(tp-recv -c "$T/dst.ini" --from "$T/drop") ;;
			apply) cmd=(tp-apply -c "$T/dst.ini") ;;
			esac
			if ((RANDOM % 3)); then
				kill9 "${cmd[@]}"
			else
				tp "${cmd[@]}"
			fi
		done
		clients_running || ((i < 50)) || break
	done
	clients_wait
	echo "# $i rounds; killed: $(for c in "${!KILLS[@]}"; do printf '%s %sx, ' "$c" "${KILLS[$c]}"; done)" >&3
	prev=-1
	for ((i = 0; i < 20; i++)); do
		pipeline "$T/src.ini" "$T/dst.ini" "$T/drop"
		cut=$(last_cut "${N}_src" replica)
		[[ $cut != "$prev" || $(ledger "${N}_dst" src) != "$cut" ]] || break
		prev=$cut
	done
	events=$(events_cut "${N}_src" replica)
	echo "# $events changes in $cut batches" >&3

	# every tick arrived once: 1..n without a gap, as on the source
	run -0 tp_psql "${N}_src" "SELECT v FROM public.counter"
	assert_output 5000
	run -0 tp_psql "${N}_dst" "SELECT count(*) || ' ' || min(n) || ' ' || max(n) || ' ' || count(DISTINCT n) FROM public.ticks"
	assert_output "5000 1 5000 5000"
	for t in public.counter public.ticks public.customers public.orders public.order_items public.oddities; do
		same "${N}_src" "${N}_dst" "$t"
	done
	# every batch applied exactly once
	run -0 ledger "${N}_dst" src
	assert_output "$cut"
	run -0 tp_psql "${N}_dst" "SELECT count(*) || ' ' || sum(events) || ' ' || count(DISTINCT seq) || ' ' || max(seq)
		FROM teleport.apply_log WHERE source = 'src'"
	assert_output "$cut $events $cut $cut"
	run -0 bash -c "ls '$T/spool-replica/inbox/src/applied' | grep -c '^[0-9]\{16\}\.tar'"
	assert_output "$cut"
	run -0 bash -c "ls '$T/spool-src/outbox/replica/sent' | grep -c '^[0-9]\{16\}\.tar'"
	assert_output "$cut"
	# nothing left in transit, no temporary file left behind
	[ "$(in_transit "$T/drop" "$T/spool-replica/inbox/src" "$T/spool-src/outbox/replica")" = 0 ]
	run -0 find "$T/drop" "$T/spool-src/outbox" "$T/spool-replica/inbox" -name '.tmp*'
	assert_output ""
}
