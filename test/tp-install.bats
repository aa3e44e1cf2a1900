#!/usr/bin/env bats
# tp-install: creates, upgrades and removes a node's objects, as a role that
# is neither superuser nor replication, owning its tables.

load helper
load batch_helper

setup_file() {
	tp_cluster_start
}

teardown_file() {
	tp_cluster_stop
}

setup() {
	DB=inst_${BATS_TEST_NUMBER}
	tp_createdb "$DB"
	tp_psql "$DB" "CREATE TABLE public.a (id int PRIMARY KEY, v text);
		CREATE TABLE public.b (x int, y int, PRIMARY KEY (x, y));
		CREATE SCHEMA other; CREATE TABLE other.c (id int PRIMARY KEY);"
	CFG=$BATS_TEST_TMPDIR/src.ini
	src_config "$CFG" "$DB" "$BATS_TEST_TMPDIR/spool"
}

triggers() {
	tp_psql "$DB" "SELECT tgrelid::regclass || ':' || tgname FROM pg_trigger
		WHERE NOT tgisinternal ORDER BY 1"
}

@test "the installing role is neither superuser nor replication" {
	run -0 tp_psql "$DB" "SELECT rolsuper OR rolreplication FROM pg_roles WHERE rolname = current_user"
	assert_output f
}

@test "install creates the schema and triggers on matched tables only" {
	run -0 tp-install -c "$CFG"
	assert_output ""
	run -0 triggers
	assert_output "a:teleport_capture
a:teleport_truncate
b:teleport_capture
b:teleport_truncate"
	run -0 tp_psql "$DB" "SELECT name FROM teleport.target"
	assert_output replica
	run -0 tp_psql "$DB" "SELECT component || '=' || version FROM teleport.version ORDER BY 1"
	assert_output "source=1"
}

@test "install is idempotent" {
	run -0 tp-install -c "$CFG"
	before=$(triggers)
	tp_psql "$DB" "INSERT INTO public.a VALUES (1, 'x')"
	run -0 tp-install -c "$CFG"
	assert_output ""
	run -0 triggers
	assert_output "$before"
	run -0 tp_psql "$DB" "SELECT count(*) FROM teleport.event"
	assert_output 1
}

@test "install follows the globs: new matches get triggers, unmatched lose them" {
	run -0 tp-install -c "$CFG"
	src_config "$CFG" "$DB" "$BATS_TEST_TMPDIR/spool" "exclude = public.b"
	printf '[target other]\ntables = other.*\nendpoint = dir:/tmp/x\n' >> "$CFG"
	run -0 tp-install -c "$CFG"
	run -0 triggers
	assert_output "a:teleport_capture
a:teleport_truncate
other.c:teleport_capture
other.c:teleport_truncate"
}

@test "install upgrades in place: missing or old objects are restored" {
	run -0 tp-install -c "$CFG"
	tp_psql "$DB" "DROP VIEW teleport.event; UPDATE teleport.version SET version = 0;
		CREATE OR REPLACE FUNCTION teleport.capture() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RETURN NULL; END'"
	run -0 tp-install -c "$CFG"
	run -0 tp_psql "$DB" "SELECT version FROM teleport.version WHERE component = 'source'"
	assert_output 1
	tp_psql "$DB" "INSERT INTO public.a VALUES (7, 'seven')"
	run -0 tp_psql "$DB" "SELECT ev_op::text || ev_table || ev_new FROM teleport.event"
	assert_output "Ia(7,seven)"
}

@test "install refuses objects from a newer version" {
	run -0 tp-install -c "$CFG"
	tp_psql "$DB" "UPDATE teleport.version SET version = 99"
	run -78 tp-install -c "$CFG"
	assert_output --partial "version 99, newer than this tp-install"
}

@test "dry-run prints the SQL and changes nothing" {
	run -0 tp-install -c "$CFG" --dry-run
	assert_output --partial "CREATE TABLE IF NOT EXISTS \"teleport\".event_0"
	assert_output --partial "CREATE TRIGGER \"teleport_capture\" AFTER INSERT OR UPDATE OR DELETE ON \"public\".\"a\""
	run -0 tp_psql "$DB" "SELECT count(*) FROM pg_namespace WHERE nspname = 'teleport'"
	assert_output 0
	run -0 triggers
	assert_output ""
}

@test "a matched table without a primary key is refused, by name, before any change" {
	tp_psql "$DB" "CREATE TABLE public.\"No Key\" (v int)"
	run -78 tp-install -c "$CFG"
	assert_line --partial 'error: table public.No Key has no primary key and cannot be replicated'
	run -0 tp_psql "$DB" "SELECT count(*) FROM pg_namespace WHERE nspname = 'teleport'"
	assert_output 0
	src_config "$CFG" "$DB" "$BATS_TEST_TMPDIR/spool" "exclude = public.No*"
	run -0 tp-install -c "$CFG"
}

@test "uninstall removes the triggers and the schema, and nothing else" {
	run -0 tp-install -c "$CFG"
	tp_psql "$DB" "CREATE FUNCTION public.keep() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RETURN NEW; END';
		CREATE TRIGGER mine BEFORE INSERT ON public.a FOR EACH ROW EXECUTE FUNCTION public.keep()"
	run -0 tp-install -c "$CFG" --uninstall
	run -0 triggers
	assert_output "a:mine"
	run -0 tp_psql "$DB" "SELECT count(*) FROM pg_namespace WHERE nspname = 'teleport'"
	assert_output 0
	run -0 tp_psql "$DB" "SELECT count(*) FROM public.a"
	run -0 tp-install -c "$CFG" --uninstall
}

@test "a target node gets the bookkeeping tables" {
	printf '[node]\nname = dst\nconninfo = %s\nspool = %s\n[source src]\n' \
		"$(tp_conninfo "$DB")" "$BATS_TEST_TMPDIR/dspool" > "$BATS_TEST_TMPDIR/dst.ini"
	run -0 tp-install -c "$BATS_TEST_TMPDIR/dst.ini"
	run -0 tp_psql "$DB" "SELECT string_agg(relname, ',' ORDER BY relname) FROM pg_class
		WHERE relnamespace = 'teleport'::regnamespace AND relkind = 'r'"
	assert_output "applied,apply_log,version"
	run -0 triggers
	assert_output ""
}

@test "capture needs no grant on the capture schema for other writers" {
	run -0 tp-install -c "$CFG"
	tp_psql_admin "$DB" "CREATE ROLE app LOGIN; GRANT USAGE ON SCHEMA public TO app"
	tp_psql "$DB" "GRANT INSERT, UPDATE, DELETE, SELECT ON public.a TO app"
	run -0 psql -X -q -v ON_ERROR_STOP=1 -At -h "$TP_PGHOST" -U app -d "$DB" \
		-c "INSERT INTO public.a VALUES (5, 'by app')"
	run -0 tp_psql "$DB" "SELECT ev_new FROM teleport.event"
	assert_output "(5,\"by app\")"
}

@test "a capture failure aborts the writer's statement instead of losing the change" {
	run -0 tp-install -c "$CFG"
	tp_psql "$DB" "REVOKE INSERT ON teleport.event_0 FROM teleport"
	run ! tp_psql "$DB" "INSERT INTO public.a VALUES (9, 'lost?')"
	assert_output --partial "permission denied"
	run -0 tp_psql "$DB" "SELECT count(*) FROM public.a"
	assert_output 0
}

@test "uninstall refuses, changing nothing, when the schema holds objects teleport did not create" {
	run -0 tp-install -c "$CFG"
	# "$user" comes first in the default search_path: the role named
	# teleport creates its own table in the capture schema by accident
	tp_psql "$DB" "CREATE TABLE mine (id int)"
	run -0 tp_psql "$DB" "SELECT relnamespace::regnamespace FROM pg_class WHERE relname = 'mine'"
	assert_output "teleport"
	run -1 tp-install -c "$CFG" --uninstall
	assert_output --partial "cannot drop schema"
	assert_output --partial "nothing was removed"
	run -0 triggers
	assert_output --partial "a:teleport_capture"
	run -0 tp_psql "$DB" "SELECT count(*) FROM teleport.mine"
	tp_psql "$DB" "DROP TABLE teleport.mine"
	run -0 tp-install -c "$CFG" --uninstall
	run -0 triggers
	assert_output ""
}
