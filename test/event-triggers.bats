#!/usr/bin/env bats
# ddl = event-triggers beyond what the schema change suites check in that
# mode (test/run runs test/ddl*.bats once more with TP_DDL_MODE): what
# tp-install needs and makes, what the triggers record and what they
# leave alone, and concurrent schema changes. The node runs as the
# superuser "admin"; the application's DDL and rows come from the
# non-superuser role "teleport", which owns the tables.

load helper
load ddl_helper

# ddl_helper's pair, in event-trigger mode, not installed
setup() {
	DDL_MODE=event-triggers
	ddl_pair
}

event_triggers() {
	tp_psql_admin "$SRC" "SELECT string_agg(evtname || ':' || evtevent || ':' || evtfoid::regproc,
		' ' ORDER BY evtname) FROM pg_event_trigger"
}

# markers: the schema change events recorded so far
markers() {
	tp_psql_admin "$SRC" "SELECT count(*) FROM teleport.event WHERE ev_op = 'S'"
}

@test "tp-install as a non-superuser refuses event-trigger mode, changes nothing, says why" {
	sed -i "s/ user=admin$/ user=teleport/" "$W/src.ini"
	run tp-install -c "$W/src.ini"
	assert_failure 78
	assert_output --partial "ddl = event-triggers: role teleport may not create event triggers"
	assert_output --partial "hint: run tp-install as a superuser"
	run -0 tp_psql "$SRC" "SELECT count(*) FROM pg_namespace WHERE nspname = 'teleport'"
	assert_output 0
}

@test "tp-install makes the two event triggers once, drops them for ddl = diff and on --uninstall" {
	run -0 tp-install -c "$W/src.ini"
	run -0 event_triggers
	assert_output "teleport_ddl_drop:sql_drop:teleport.ddl_drop teleport_ddl_end:ddl_command_end:teleport.ddl_end"
	run -0 tp-install -c "$W/src.ini"
	run -0 event_triggers
	assert_output "teleport_ddl_drop:sql_drop:teleport.ddl_drop teleport_ddl_end:ddl_command_end:teleport.ddl_end"
	# tp-install's own changes are not recorded
	run -0 markers
	assert_output 0
	sed -i "s/^ddl = event-triggers$/ddl = diff/" "$W/src.ini"
	run -0 tp-install -c "$W/src.ini"
	run -0 event_triggers
	assert_output ""
	sed -i "s/^ddl = diff$/ddl = event-triggers/" "$W/src.ini"
	run -0 tp-install -c "$W/src.ini"
	run -0 tp-install -c "$W/src.ini" --uninstall
	run -0 event_triggers
	assert_output ""
	run -0 tp_psql "$SRC" "SELECT count(*) FROM pg_namespace WHERE nspname = 'teleport'"
	assert_output 0
}

@test "the recording functions refuse to run outside an event trigger" {
	run -0 tp-install -c "$W/src.ini"
	run tp_psql "$SRC" "SELECT teleport.ddl_event('I', 'public', 't', '(9,forged)')"
	assert_failure
	run tp_psql "$SRC" "SELECT teleport.ddl_seed('public.t'::regclass)"
	assert_failure
	run -0 tp_psql_admin "$SRC" "SELECT count(*) FROM teleport.event"
	assert_output 0
}

@test "temporary tables, other schemas and excluded tables leave no marker; a matched change leaves one" {
	run -0 tp-install -c "$W/src.ini"
	tp_psql "$SRC" "CREATE TEMP TABLE scratch (id int PRIMARY KEY); DROP TABLE scratch"
	tp_psql "$SRC" "CREATE TEMP TABLE scratch2 (id int)"
	run -0 markers
	assert_output 0
	tp_psql "$SRC" "CREATE SCHEMA other; CREATE TABLE other.x (id int PRIMARY KEY);
		CREATE TABLE public.tmp_x (id int PRIMARY KEY)"
	run -0 tp_psql "$SRC" "SELECT count(*) FROM pg_trigger WHERE tgrelid IN ('other.x'::regclass, 'public.tmp_x'::regclass)"
	assert_output 0
	tp_psql "$SRC" "ALTER TABLE public.t ADD COLUMN b int"
	run -0 markers
	[ "$output" -ge 1 ]
	tp-install -c "$W/dst.ini"
	run ship
	assert_success
	same public.t
	run -0 tp_psql "$DST" "SELECT count(*) FROM pg_class WHERE relname IN ('x', 'tmp_x')"
	assert_output 0
}

@test "a table made by CREATE TABLE AS gets its rows once it has a primary key" {
	run -0 tp-install -c "$W/src.ini"
	tp-install -c "$W/dst.ini"
	tp_psql "$SRC" "CREATE TABLE public.copy AS SELECT g AS id, 'row ' || g AS v FROM generate_series(1, 50) g"
	tp_psql "$SRC" "INSERT INTO public.copy VALUES (51, 'later')"
	run ship
	assert_success
	# no key yet: not replicated
	run -0 tp_psql "$DST" "SELECT pg_catalog.to_regclass('public.copy')"
	assert_output ""
	tp_psql "$SRC" "BEGIN; ALTER TABLE public.copy ADD PRIMARY KEY (id);
		UPDATE public.copy SET v = 'changed' WHERE id = 2; DELETE FROM public.copy WHERE id = 3; COMMIT"
	tp_psql "$SRC" "INSERT INTO public.copy VALUES (52, 'after')"
	run ship
	assert_success
	same public.copy public.t
	run -0 tp_psql "$DST" "SELECT count(*) || ' ' || min(v) FROM public.copy WHERE id = 2"
	assert_output "1 changed"
}

# clock_held: wait until a transaction holds ddl_clock (has recorded a
# schema change and not committed yet)
clock_held() {
	until [[ $(tp_psql_admin "$SRC" "SELECT count(*) FROM pg_locks l
		JOIN pg_class c ON c.oid = l.relation
		WHERE c.relname = 'ddl_clock' AND l.mode = 'RowExclusiveLock' AND l.granted") == 1 ]]; do
		sleep 0.1
	done
}

# Two transactions change the schema at once: the second waits for the
# first (ddl_clock), so its description includes the first's change, and
# the target gets both.
@test "concurrent schema changes: READ COMMITTED waits its turn, REPEATABLE READ fails with 40001" {
	run -0 tp-install -c "$W/src.ini"
	tp-install -c "$W/dst.ini"
	both "CREATE TABLE public.u (id int PRIMARY KEY)"
	tp_psql "$SRC" "ALTER TABLE public.u ADD COLUMN c0 int"    # u gets its trigger
	run ship
	assert_success
	tp_psql "$SRC" "BEGIN; ALTER TABLE public.t ADD COLUMN b int; INSERT INTO public.t VALUES (3, 'three', 3);
		SELECT pg_sleep(6); COMMIT" &
	first=$!
	clock_held
	# read committed: waits, then sees b
	tp_psql "$SRC" "ALTER TABLE public.u ADD COLUMN c int; INSERT INTO public.u VALUES (1, 0, 1)"
	wait "$first"
	# repeatable read with a snapshot older than a concurrent change: refused
	tp_psql "$SRC" "BEGIN; ALTER TABLE public.t ADD COLUMN d int; SELECT pg_sleep(6); COMMIT" &
	first=$!
	clock_held
	run tp_psql "$SRC" "BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT 1; ALTER TABLE public.u ADD COLUMN e int; COMMIT"
	wait "$first"
	assert_failure
	assert_output --partial "could not serialize access due to concurrent update"
	tp_psql "$SRC" "INSERT INTO public.t VALUES (4, 'four', 4, 4); UPDATE public.u SET c = 2"
	run ship
	assert_success
	same public.t public.u
	run -0 columns "$DST" public.u
	assert_output "id integer not null, c0 integer, c integer"
}

@test "tp-batch warns when the event triggers are disabled" {
	run -0 tp-install -c "$W/src.ini"
	tp_psql_admin "$SRC" "ALTER EVENT TRIGGER teleport_ddl_end DISABLE"
	tp_psql "$SRC" "INSERT INTO public.t VALUES (3, 'three')"
	run -0 tp-batch -c "$W/src.ini"
	assert_output --partial "warning: target replica: ddl = event-triggers, but the event triggers are missing or disabled"
	tp_psql_admin "$SRC" "ALTER EVENT TRIGGER teleport_ddl_end ENABLE"
	run -0 tp-batch -c "$W/src.ini"
	assert_output ""
}

@test "a table that a changed glob now matches arrives whole: tp-install equips it, the cut copies it" {
	run -0 tp-install -c "$W/src.ini"
	tp-install -c "$W/dst.ini"
	tp_psql "$SRC" "CREATE SCHEMA late; CREATE TABLE late.x (id int PRIMARY KEY, v text);
		INSERT INTO late.x SELECT g, 'v' || g FROM generate_series(1, 20) g"
	run ship
	assert_success
	run -0 tp_psql "$DST" "SELECT pg_catalog.to_regclass('late.x')"
	assert_output ""
	sed -i 's/^tables = public.\*, sales\*.\*$/tables = public.*, sales*.*, late.*/' "$W/src.ini"
	run -0 tp-install -c "$W/src.ini"
	tp_psql "$SRC" "UPDATE late.x SET v = 'changed' WHERE id = 1; DELETE FROM late.x WHERE id = 2"
	run ship
	assert_success
	same late.x
	run -0 tp_psql "$DST" "SELECT count(*) FROM late.x"
	assert_output 19
	tp_psql "$SRC" "INSERT INTO late.x VALUES (21, 'after')"
	run ship
	assert_success
	same late.x
}
