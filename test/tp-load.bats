#!/usr/bin/env bats
# tp-load: the initial load of a target, while the application keeps
# writing, hands over to the change stream exactly: after the pipeline runs
# until quiet, every table on the target equals the source's, nothing lost
# and nothing applied twice (unique keys refuse a double insert; the md5 of
# the ordered rows catches the rest). As the NOSUPERUSER role teleport.

load helper

setup_file() {
	tp_cluster_start
}

teardown_file() {
	tp_cluster_stop
}

setup() {
	SRC=src_$BATS_TEST_NUMBER
	DST=dst_$BATS_TEST_NUMBER
	tp_createdb "$SRC"
	tp_createdb "$DST"
	W=$BATS_TEST_TMPDIR
	tp_pair_config "public.*"
	mkdir -p "$W/drop"
	for db in "$SRC" "$DST"; do
		tp_psql "$db" "CREATE TABLE public.parent (id int PRIMARY KEY, name text NOT NULL)" \
			"CREATE TABLE public.child (id bigint PRIMARY KEY,
				parent int NOT NULL REFERENCES public.parent, v numeric,
				note text, doubled numeric GENERATED ALWAYS AS (v * 2) STORED)" \
			"CREATE TABLE public.\"Odd Name\" (k text PRIMARY KEY, j jsonb, b bytea)" \
			"CREATE TABLE public.empty (id int PRIMARY KEY)"
	done
	tp_psql "$SRC" "INSERT INTO public.parent SELECT g, 'p' || g FROM generate_series(1, 200) g" \
		"INSERT INTO public.child (id, parent, v, note)
			SELECT g, 1 + g % 200, g / 7.0, repeat('x', g % 50) || E'\\t\\n\\\\'
			FROM generate_series(1, 100000) g" \
		"INSERT INTO public.\"Odd Name\" SELECT 'k' || g, jsonb_build_object('g', g),
			decode(md5(g::text), 'hex') FROM generate_series(1, 500) g"
	WRITER=
}

teardown() {
	[[ -z $WRITER ]] || kill -9 "$WRITER" 2>/dev/null || true
}

# writer N [OFFSET]: a background client changing every table, committing often:
# inserts, updates (also of rows the load copies) and deletes.
writer() {
	tp_psql "$SRC" "DO \$\$
	BEGIN
	  FOR i IN 1..$1 LOOP
	    INSERT INTO public.child (id, parent, v, note) VALUES (100000 + ${2:-0} + i, 1 + i % 200, i, 'new');
	    UPDATE public.child SET v = v + 1, note = 'upd' WHERE id = 1 + (i * 37) % 20000;
	    DELETE FROM public.child WHERE id = 1 + (i * 53) % 20000;
	    UPDATE public.parent SET name = name || '+' WHERE id = 1 + i % 200;
	    INSERT INTO public.\"Odd Name\" VALUES ('w' || (${2:-0} + i), '[1]', '\\x00');
	    DELETE FROM public.\"Odd Name\" WHERE k = 'k' || (1 + i % 500);
	    COMMIT;
	  END LOOP;
	END \$\$" > "$W/writer.log" 2>&1 3>&- &
	WRITER=$!
}

# quiet: run the pipeline until the target holds every cut batch
quiet() {
	local i
	for i in $(seq 1 30); do
		tp-batch -c "$W/src.ini" || return 1
		tp-send -c "$W/src.ini" || return 1
		tp-recv -c "$W/dst.ini" --from "$W/drop" || return 1
		tp-apply -c "$W/dst.ini" || [[ $? -eq 75 ]] || return 1
		local cut applied
		cut=$(tp_psql "$SRC" "SELECT last_seq FROM teleport.target WHERE name = 'replica'")
		applied=$(tp_psql "$DST" "SELECT coalesce(max(seq), 0) FROM teleport.applied")
		[[ $cut != "$applied" ]] || return 0
	done
	echo "# not quiet: cut $cut, applied $applied" >&2
	return 1
}

checksum() {
	tp_psql "$1" "SELECT count(*) || ' ' || md5(coalesce(string_agg(x::text, E'\n'
		ORDER BY x::text COLLATE \"C\"), '')) FROM $2 x"
}

# same: every table equal on both sides
same() {
	local t a b st=0
	for t in public.parent public.child 'public."Odd Name"' public.empty; do
		a=$(checksum "$SRC" "$t")
		b=$(checksum "$DST" "$t")
		if [[ $a != "$b" ]]; then
			echo "# $t differs: source $a, target $b" >&2
			st=1
		fi
	done
	return $st
}

install() {
	tp-install -c "$W/src.ini"
	tp-install -c "$W/dst.ini"
}

@test "tp-load refuses a source where tp-install has not run" {
	run tp-load -c "$W/src.ini" --outbox replica
	assert_failure 78
	assert_output --partial "not installed"
	assert_output --partial "tp-install"
}

@test "a batch stream is never written to a terminal" {
	install
	run script -qec "tp-load -c '$W/src.ini' replica" /dev/null
	assert_failure 64
	assert_output --partial "terminal"
}

@test "load under concurrent writes, piped into tp-send, in several parts: exact" {
	install
	writer 400
	tp-load -c "$W/src.ini" --batch-size 64k replica | tp-send -c "$W/src.ini" --target replica -
	# several parts, the first naming the tables, the last flagged
	run tp_psql "$SRC" "SELECT count(*) > 3 FROM teleport.batch WHERE kind = 'load'"
	assert_output t
	wait "$WRITER"
	WRITER=
	quiet
	same
	run tp_psql "$DST" "SELECT count(*) > 3 FROM teleport.apply_log WHERE kind = 'load'"
	assert_output t
	# a second run finds every table loaded
	run tp-load -c "$W/src.ini" -v --outbox replica
	assert_success
	assert_output --partial "loaded already"
}

@test "--outbox, a named table only, then the rest" {
	install
	tp-load -c "$W/src.ini" --outbox replica "public.Odd Name"
	writer 100
	tp-load -c "$W/src.ini" --outbox --batch-size 100k replica
	wait "$WRITER"
	WRITER=
	quiet
	same
	run tp-load -c "$W/src.ini" --outbox replica public.nosuch
	assert_failure 64
}

@test "kill -9 of tp-load mid-way, then a re-run: still exact" {
	install
	writer 300
	mkfifo "$W/fifo"
	tp-send -c "$W/src.ini" --target replica - < "$W/fifo" 2>/dev/null 3>&- &
	local send=$! i
	tp-load -c "$W/src.ini" --batch-size 16k replica > "$W/fifo" 2>/dev/null 3>&- &
	local load=$!
	# hold the reader once some parts got through: tp-load blocks writing
	for i in $(seq 1 400); do
		(($(ls "$W/sspool/outbox/replica" 2>/dev/null | grep -c 'tar') >= 3)) && break
		sleep 0.05
	done
	kill -STOP "$send"
	sleep 0.5
	kill -9 "$load"
	kill -CONT "$send"
	wait "$load" || true
	wait "$send" || true
	# the killed run recorded nothing but its reserved numbers
	run tp_psql "$SRC" "SELECT count(*) FROM teleport.batch WHERE kind = 'load'"
	assert_output 0
	run tp_psql "$SRC" "SELECT seq >= 3 FROM teleport.load_reserve"
	assert_output t
	# its parts travel and wait (no tp-batch before the first load: see
	# tp-load(1)); the re-run's first part says they are void
	tp-send -c "$W/src.ini"
	tp-recv -c "$W/dst.ini" --from "$W/drop"
	run tp-apply -c "$W/dst.ini"
	assert_failure 75
	tp-load -c "$W/src.ini" replica | tp-send -c "$W/src.ini" --target replica -
	wait "$WRITER"
	WRITER=
	quiet
	same
	run tp_psql "$DST" "SELECT count(*) >= 3 FROM teleport.apply_log WHERE kind = 'load-abandoned'"
	assert_output t
}

@test "tp-batch waits for a load in progress: exit 75" {
	install
	tp_psql "$SRC" "BEGIN; SELECT 1 FROM teleport.target FOR UPDATE; SELECT pg_sleep(30); COMMIT" \
		> /dev/null 2>&1 3>&- &
	local locker=$! i
	for i in $(seq 1 100); do
		tp_psql "$SRC" "SELECT 1 FROM teleport.target FOR UPDATE NOWAIT" > /dev/null 2>&1 || break
		sleep 0.1
	done
	run tp-batch -c "$W/src.ini"
	tp_psql "$SRC" "SELECT pg_cancel_backend(pid) FROM pg_stat_activity
		WHERE query LIKE '%pg_sleep(30)%' AND pid <> pg_backend_pid()" > /dev/null
	wait "$locker" || true
	assert_failure 75
	assert_output --partial "busy"
}

@test "a second target loaded later while the first keeps replicating" {
	install
	writer 200
	tp-load -c "$W/src.ini" replica | tp-send -c "$W/src.ini" --target replica -
	wait "$WRITER"
	WRITER=
	quiet
	same
	# the second target joins: its own database, drop folder and config
	D2=dst2_$BATS_TEST_NUMBER
	tp_createdb "$D2"
	pg_dump -h "$TP_PGHOST" -U teleport --schema-only --exclude-schema=teleport "$DST" |
		tp_psql "$D2" >/dev/null
	printf '[target second]\ntables = public.*\nendpoint = dir:%s/drop2\n' "$W" >> "$W/src.ini"
	mkdir -p "$W/drop2"
	tp_write_config "$W/dst2.ini" <<-EOF
	[node]
	name = second
	conninfo = $(tp_conninfo "$D2")
	spool = $W/d2spool
	[source src]
	EOF
	tp-install -c "$W/src.ini"
	tp-install -c "$W/dst2.ini"
	writer 300 1000
	tp-load -c "$W/src.ini" --batch-size 64k second | tp-send -c "$W/src.ini" --target second -
	# the first target goes on meanwhile
	tp-batch -c "$W/src.ini" --target replica
	wait "$WRITER"
	WRITER=
	quiet
	local i
	for i in 1 2 3 4 5; do
		tp-batch -c "$W/src.ini" --target second
		tp-send -c "$W/src.ini" --target second
		tp-recv -c "$W/dst2.ini" --from "$W/drop2"
		tp-apply -c "$W/dst2.ini" || [[ $? -eq 75 ]]
	done
	same
	DST=$D2 same
	run tp_psql "$D2" "SELECT seq = (SELECT count(*) FROM teleport.apply_log) FROM teleport.applied"
	assert_output t
}

@test "the schema part: a target without the tables gets them, with keys, types, defaults and indexes" {
	tp_psql "$SRC" "CREATE TYPE public.mood AS ENUM ('sad', 'ok');
		ALTER TABLE public.parent ADD COLUMN m public.mood DEFAULT 'ok',
			ADD COLUMN n bigint GENERATED BY DEFAULT AS IDENTITY;
		CREATE INDEX parent_name ON public.parent (name);
		ALTER TABLE public.child ADD CONSTRAINT v_pos CHECK (v >= 0)"
	tp_psql "$DST" "DROP TABLE public.child, public.parent, public.\"Odd Name\", public.empty"
	install
	writer 50
	tp-load -c "$W/src.ini" --batch-size 256k replica | tp-send -c "$W/src.ini" --target replica -
	wait "$WRITER"
	WRITER=
	quiet
	same
	# the same columns, keys, constraints and indexes on both sides
	for db in "$SRC" "$DST"; do
		tp_psql "$db" "SELECT string_agg(pg_catalog.pg_get_indexdef(indexrelid), '; '
				ORDER BY pg_catalog.pg_get_indexdef(indexrelid))
			FROM pg_index WHERE indrelid IN ('public.parent'::regclass, 'public.child'::regclass)
			UNION ALL SELECT string_agg(conname || ' ' || pg_get_constraintdef(oid), '; ' ORDER BY conname)
			FROM pg_constraint WHERE conrelid IN ('public.parent'::regclass, 'public.child'::regclass)
			UNION ALL SELECT string_agg(attname || ' ' || format_type(atttypid, atttypmod), ', ' ORDER BY attnum)
			FROM pg_attribute WHERE attrelid = 'public.child'::regclass AND attnum > 0" > "$W/schema-$db"
	done
	run diff "$W/schema-$SRC" "$W/schema-$DST"
	assert_success
	# an identity goes on after the source's ids
	run -0 tp_psql "$DST" "INSERT INTO public.parent (id, name) VALUES (1000, 'x') RETURNING n"
	assert_output 201
}

@test "--no-schema leaves the schema part out: a target without the tables waits for them" {
	tp_psql "$DST" "DROP TABLE public.\"Odd Name\""
	install
	tp-load -c "$W/src.ini" --no-schema --outbox replica
	tp-send -c "$W/src.ini"
	tp-recv -c "$W/dst.ini" --from "$W/drop"
	run tp-apply -c "$W/dst.ini"
	assert_failure 75
	assert_output --partial "42P01"
	tp_psql "$DST" "CREATE TABLE public.\"Odd Name\" (k text PRIMARY KEY, j jsonb, b bytea)"
	quiet
	same
}

@test "--rebuild-indexes: the target drops indexes and foreign keys around the rows and builds them again" {
	for db in "$SRC" "$DST"; do
		tp_psql "$db" "CREATE INDEX child_v ON public.child (v); CREATE UNIQUE INDEX child_note ON public.child (id, note)"
	done
	install
	old=$(tp_psql "$DST" "SELECT string_agg(oid::text, ',' ORDER BY relname) FROM pg_class
		WHERE relname IN ('child_v', 'child_note')")
	tp-load -c "$W/src.ini" --rebuild-indexes replica | tp-send -c "$W/src.ini" --target replica -
	quiet
	same
	run -0 tp-apply -v -c "$W/dst.ini" 2>&1
	# built again: new objects, the same definitions as before
	new=$(tp_psql "$DST" "SELECT string_agg(oid::text, ',' ORDER BY relname) FROM pg_class
		WHERE relname IN ('child_v', 'child_note')")
	[ -n "$new" ] && [ "$new" != "$old" ]
	run -0 tp_psql "$DST" "SELECT count(*) FROM pg_constraint WHERE conrelid = 'public.child'::regclass AND contype = 'f'"
	assert_output 1
	run -0 tp_psql "$DST" "SELECT count(*) FROM pg_index WHERE indrelid = 'public.child'::regclass"
	assert_output 3
	# a foreign key still checked: the target refuses an orphan
	run tp_psql "$DST" "INSERT INTO public.child (id, parent) VALUES (999999, 12345)"
	assert_failure
}
