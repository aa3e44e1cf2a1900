# Shared by the schema change suites (ddl.bats, ddl2.bats, ddl3.bats,
# event-triggers.bats): two databases, a source and a target node with
# their configs, public.t on both, and helpers to cut, ship and compare.
# shellcheck shell=bash

setup_file() {
	tp_cluster_start
}

teardown_file() {
	tp_cluster_stop
}

# ddl_pair: the databases and configs, public.t on both sides; nothing
# installed yet
ddl_pair() {
	tp_pair_dbs
	tp_pair_config "public.*, sales*.*" "exclude = public.tmp_*"
	ddl_mode_config
	both "CREATE TABLE public.t (id int PRIMARY KEY, a text)"
	tp_psql "$SRC" "INSERT INTO public.t VALUES (1, 'one'), (2, 'two')"
	tp_psql "$DST" "INSERT INTO public.t VALUES (1, 'one'), (2, 'two')"
}

setup() {
	ddl_pair
	tp-install -c "$W/src.ini"
	tp-install -c "$W/dst.ini"
}

# TP_DDL_MODE=event-triggers runs the schema change suites in that mode
# (test/run does, after the diff mode run): the source node then runs as
# the superuser "admin", which may create event triggers, while the
# tests' DDL and rows still come from the non-superuser role.
DDL_MODE=${TP_DDL_MODE:-diff}

ddl_mode_config() {
	[[ $DDL_MODE == diff ]] && return 0
	sed -i -e "s/ user=teleport\$/ user=admin/" -e "/^\[node\]/a ddl = $DDL_MODE" "$W/src.ini"
}

# events_mode: true when the suite runs with ddl = event-triggers
events_mode() { [[ $DDL_MODE == event-triggers ]]; }

both() {
	tp_psql "$SRC" "$@"
	tp_psql "$DST" "$@"
}

# cut [tp-batch|tp-ddlscan]: cut on the source, move into the inbox; the
# cut's status. ship: then apply.
cut() {
	local rc=0
	"${1:-tp-batch}" -c "$W/src.ini" || rc=$?
	tp_to_inbox
	return $rc
}

ship() {
	cut "$@" && tp-apply -c "$W/dst.ini"
}

# columns DB TABLE: name, type, NOT NULL, default of each column
columns() {
	tp_psql "$1" "SELECT string_agg(a.attname || ' ' || pg_catalog.format_type(a.atttypid, a.atttypmod)
		|| CASE WHEN a.attnotnull THEN ' not null' ELSE '' END
		|| coalesce(' default ' || pg_catalog.pg_get_expr(d.adbin, d.adrelid), ''), ', ' ORDER BY a.attnum)
		FROM pg_catalog.pg_attribute a
		LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
		WHERE a.attrelid = '$2'::regclass AND a.attnum > 0 AND NOT a.attisdropped"
}

rows() {
	tp_psql "$1" "SELECT string_agg(x::text, ' ' ORDER BY x::text) FROM $2 x"
}

pkey() {
	tp_psql "$1" "SELECT pg_catalog.pg_get_constraintdef(oid) FROM pg_catalog.pg_constraint
		WHERE conrelid = '$2'::regclass AND contype = 'p'"
}

# same TABLE...: columns, key and rows equal on both sides
same() {
	local t
	for t in "$@"; do
		assert_equal "$(columns "$DST" "$t")" "$(columns "$SRC" "$t")"
		assert_equal "$(pkey "$DST" "$t")" "$(pkey "$SRC" "$t")"
		assert_equal "$(rows "$DST" "$t")" "$(rows "$SRC" "$t")"
	done
}
