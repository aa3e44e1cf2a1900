#!/usr/bin/env bats
# Schema changes in diff mode, part 2: types (enums and their labels,
# composite types, domains), unique and check constraints, indexes and
# sequences, created, changed and dropped on the source, found so on the
# target, with rows using them in the same batch. As the non-superuser
# role; the fixtures are ddl.bats's (ddl_helper.bash).

load helper
load ddl_helper

# labels DB TYPE: an enum's labels in their order
labels() {
	tp_psql "$1" "SELECT string_agg(enumlabel, ',' ORDER BY enumsortorder)
		FROM pg_catalog.pg_enum WHERE enumtypid = pg_catalog.to_regtype('$2')"
}

# typedef DB TYPE: a composite type's attributes, or a domain's definition
typedef() {
	tp_psql "$1" "SELECT coalesce((SELECT string_agg(a.attname || ' ' ||
			pg_catalog.format_type(a.atttypid, a.atttypmod), ', ' ORDER BY a.attnum)
		FROM pg_catalog.pg_attribute a WHERE a.attrelid = t.typrelid AND a.attnum > 0
			AND NOT a.attisdropped),
		pg_catalog.format_type(t.typbasetype, t.typtypmod) || ' ' || t.typnotnull
		|| ' ' || coalesce(t.typdefault, '-') || ' ' || coalesce((SELECT string_agg(
			k.conname || ' ' || pg_catalog.pg_get_constraintdef(k.oid), ', ' ORDER BY k.conname)
			FROM pg_catalog.pg_constraint k WHERE k.contypid = t.oid), '-'))
		FROM pg_catalog.pg_type t WHERE t.oid = pg_catalog.to_regtype('$2')"
}

# extras DB TABLE: the table's constraints and indexes, by name
extras() {
	tp_psql "$1" "SELECT string_agg(x, '; ' ORDER BY x) FROM (
		SELECT k.conname || ' ' || pg_catalog.pg_get_constraintdef(k.oid) x
		FROM pg_catalog.pg_constraint k WHERE k.conrelid = '$2'::regclass
		UNION ALL SELECT pg_catalog.pg_get_indexdef(i.indexrelid)
		FROM pg_catalog.pg_index i WHERE i.indrelid = '$2'::regclass) s"
}

# seqstate DB SEQ: parameters and last value
seqstate() {
	tp_psql "$1" "SELECT s.seqtypid::regtype || ' ' || s.seqstart || ' ' || s.seqincrement
		|| ' ' || s.seqmax || ' ' || s.seqcycle || ' '
		|| coalesce(pg_catalog.pg_sequence_last_value(s.seqrelid::regclass)::text, '-')
		FROM pg_catalog.pg_sequence s WHERE s.seqrelid = pg_catalog.to_regclass('$2')"
}

@test "an enum: created and used, labels added and used in the same batch, renamed, dropped" {
	tp_psql "$SRC" "CREATE TYPE public.mood AS ENUM ('sad', 'ok');
		ALTER TABLE public.t ADD COLUMN m public.mood; UPDATE public.t SET m = 'ok' WHERE id = 1"
	run ship
	assert_success
	same public.t
	assert_equal "$(labels "$DST" public.mood)" "sad,ok"
	# two labels placed before and after, used right away: one batch
	tp_psql "$SRC" "ALTER TYPE public.mood ADD VALUE 'happy' AFTER 'ok';
		ALTER TYPE public.mood ADD VALUE 'meh' BEFORE 'sad'"
	tp_psql "$SRC" "INSERT INTO public.t VALUES (3, 'three', 'happy'), (4, 'four', 'meh')"
	cut
	run tp-apply -v -c "$W/dst.ini"
	assert_success
	assert_output --partial "ahead of the batch"
	same public.t
	assert_equal "$(labels "$DST" public.mood)" "$(labels "$SRC" public.mood)"
	assert_equal "$(labels "$DST" public.mood)" "meh,sad,ok,happy"
	tp_psql "$SRC" "ALTER TYPE public.mood RENAME VALUE 'meh' TO 'blah';
		ALTER TYPE public.mood RENAME TO feeling; ALTER TYPE public.feeling ADD VALUE 'wow'"
	tp_psql "$SRC" "INSERT INTO public.t VALUES (5, 'five', 'blah'), (6, 'six', 'wow')"
	run ship
	assert_success
	same public.t
	assert_equal "$(labels "$DST" public.feeling)" "blah,sad,ok,happy,wow"
	tp_psql "$SRC" "ALTER TABLE public.t DROP COLUMN m; DROP TYPE public.feeling"
	run ship
	assert_success
	same public.t
	assert_equal "$(tp_psql "$DST" "SELECT pg_catalog.to_regtype('public.feeling')")" ""
}

@test "an enum created and used in one transaction, with a new table" {
	tp_psql "$SRC" "BEGIN; CREATE TYPE public.colour AS ENUM ('red', 'green');
		CREATE TABLE public.paint (id int PRIMARY KEY, c public.colour NOT NULL DEFAULT 'green');
		INSERT INTO public.paint VALUES (1, 'red'), (2, DEFAULT); COMMIT"
	run ship
	assert_success
	same public.paint
	tp_psql "$SRC" "INSERT INTO public.paint VALUES (3, 'red')"
	run ship
	assert_success
	same public.paint
}

@test "composite types and domains: created, used, changed, dropped" {
	tp_psql "$SRC" "CREATE DOMAIN public.posint AS int DEFAULT 1 NOT NULL CHECK (VALUE > 0);
		CREATE DOMAIN public.code AS text;
		CREATE TYPE public.pair AS (x int, y public.posint);
		ALTER TABLE public.t ADD COLUMN p public.pair, ADD COLUMN n public.posint,
			ADD COLUMN c public.code;
		UPDATE public.t SET p = ROW(1, 2), c = 'abc' WHERE id = 1"
	run ship
	assert_success
	same public.t
	assert_equal "$(typedef "$DST" public.pair)" "x integer, y posint"
	assert_equal "$(typedef "$DST" public.posint)" "$(typedef "$SRC" public.posint)"
	tp_psql "$SRC" "ALTER TYPE public.pair ADD ATTRIBUTE z text;
		ALTER TYPE public.pair RENAME ATTRIBUTE x TO xx;
		ALTER DOMAIN public.code ADD CONSTRAINT short CHECK (length(VALUE) < 10);
		ALTER DOMAIN public.code SET DEFAULT 'none';
		INSERT INTO public.t (id, a, p) VALUES (3, 'three', ROW(3, 4, 'zz'))"
	run ship
	assert_success
	same public.t
	assert_equal "$(typedef "$DST" public.pair)" "$(typedef "$SRC" public.pair)"
	assert_equal "$(typedef "$DST" public.code)" "$(typedef "$SRC" public.code)"
	tp_psql "$SRC" "ALTER DOMAIN public.code DROP CONSTRAINT short;
		ALTER DOMAIN public.code DROP DEFAULT; UPDATE public.t SET c = 'set' WHERE c IS NULL;
		ALTER DOMAIN public.code SET NOT NULL;
		ALTER TYPE public.pair DROP ATTRIBUTE z; INSERT INTO public.t (id, c) VALUES (4, 'a long code')"
	run ship
	assert_success
	same public.t
	assert_equal "$(typedef "$DST" public.pair)" "$(typedef "$SRC" public.pair)"
	assert_equal "$(typedef "$DST" public.code)" "$(typedef "$SRC" public.code)"
	tp_psql "$SRC" "ALTER TABLE public.t DROP COLUMN p, DROP COLUMN n, DROP COLUMN c;
		DROP TYPE public.pair; DROP DOMAIN public.posint; DROP DOMAIN public.code"
	run ship
	assert_success
	same public.t
	run tp_psql "$DST" "SELECT count(*) FROM pg_catalog.pg_type WHERE typname IN ('pair', 'posint', 'code')"
	assert_output 0
}

@test "unique and check constraints and indexes: added, renamed, dropped" {
	tp_psql "$SRC" "ALTER TABLE public.t ADD CONSTRAINT t_a_key UNIQUE (a),
		ADD CONSTRAINT t_id_pos CHECK (id > 0);
		CREATE INDEX t_lower ON public.t (lower(a) text_pattern_ops) WHERE id > 1;
		CREATE UNIQUE INDEX \"T idx\" ON public.t USING btree (id DESC, a) INCLUDE (a);
		INSERT INTO public.t VALUES (3, 'three')"
	run ship
	assert_success
	same public.t
	assert_equal "$(extras "$DST" public.t)" "$(extras "$SRC" public.t)"
	tp_psql "$SRC" "ALTER TABLE public.t RENAME CONSTRAINT t_id_pos TO t_id_positive;
		ALTER INDEX public.t_lower RENAME TO t_lower_a; DROP INDEX public.\"T idx\";
		ALTER TABLE public.t DROP CONSTRAINT t_a_key; INSERT INTO public.t VALUES (4, 'three')"
	run ship
	assert_success
	same public.t
	assert_equal "$(extras "$DST" public.t)" "$(extras "$SRC" public.t)"
	# a new table with its own
	tp_psql "$SRC" "CREATE TABLE public.u (id int PRIMARY KEY, code text UNIQUE CHECK (code <> ''));
		CREATE INDEX u_code ON public.u (code); INSERT INTO public.u VALUES (1, 'x')"
	run ship
	assert_success
	same public.u
	assert_equal "$(extras "$DST" public.u)" "$(extras "$SRC" public.u)"
}

@test "sequences: created, owned, values moved forward only, dropped" {
	tp_psql "$SRC" "CREATE TABLE public.s (id serial PRIMARY KEY, v text);
		INSERT INTO public.s (v) VALUES ('a'), ('b'), ('c');
		CREATE SEQUENCE public.counter AS int INCREMENT BY 5 START 10 MAXVALUE 100000 CYCLE;
		SELECT nextval('public.counter'), nextval('public.counter')"
	run ship
	assert_success
	same public.s
	assert_equal "$(seqstate "$DST" public.counter)" "$(seqstate "$SRC" public.counter)"
	assert_equal "$(seqstate "$DST" public.s_id_seq)" "$(seqstate "$SRC" public.s_id_seq)"
	run tp_psql "$DST" "SELECT pg_catalog.pg_get_serial_sequence('public.s', 'id')"
	assert_output public.s_id_seq
	# the target is further on (used after a failover, say): not moved back
	tp_psql "$DST" "SELECT setval('public.counter', 5000)"
	tp_psql "$SRC" "SELECT nextval('public.counter'); INSERT INTO public.s (v) VALUES ('d')"
	run ship
	assert_success
	same public.s
	assert_equal "$(tp_psql "$DST" "SELECT last_value FROM public.counter")" 5000
	assert_equal "$(seqstate "$DST" public.s_id_seq)" "$(seqstate "$SRC" public.s_id_seq)"
	tp_psql "$SRC" "ALTER SEQUENCE public.counter RENAME TO tally; ALTER SEQUENCE public.tally INCREMENT BY 7"
	run ship
	assert_success
	run tp_psql "$DST" "SELECT seqincrement FROM pg_catalog.pg_sequence WHERE seqrelid = 'public.tally'::regclass"
	assert_output 7
	tp_psql "$SRC" "DROP SEQUENCE public.tally; DROP TABLE public.s"
	run ship
	assert_success
	run tp_psql "$DST" "SELECT count(*) FROM pg_catalog.pg_class WHERE relname IN ('tally', 's', 's_id_seq')"
	assert_output 0
}

@test "apply_schema remaps the types of columns and types too" {
	tp_psql "$DST" "CREATE SCHEMA copy; CREATE TABLE copy.t (id int PRIMARY KEY, a text)"
	tp_psql "$DST" "INSERT INTO copy.t VALUES (1, 'one'), (2, 'two')"
	printf 'apply_schema = copy\n' >> "$W/src.ini"
	tp_psql "$SRC" "CREATE TYPE public.mood AS ENUM ('sad', 'ok');
		CREATE TYPE public.box AS (m public.mood, n int);
		ALTER TABLE public.t ADD COLUMN m public.mood, ADD COLUMN b public.box;
		INSERT INTO public.t VALUES (3, 'three', 'ok', ROW('sad', 1))"
	run ship
	assert_success
	assert_equal "$(rows "$DST" copy.t)" "$(rows "$SRC" public.t)"
	assert_equal "$(columns "$DST" copy.t)" "id integer not null, a text, m copy.mood, b copy.box"
	assert_equal "$(typedef "$DST" copy.box)" "m copy.mood, n integer"
}

# identity DB TABLE COLUMN: "kind value" of an identity column
# ("-" for no identity)
identity() {
	tp_psql "$1" "SELECT coalesce(nullif(a.attidentity::text, ''), '-') || ' ' || coalesce(
		pg_catalog.pg_sequence_last_value(pg_catalog.pg_get_serial_sequence('$2', '$3')::regclass)::text, '')
		FROM pg_attribute a WHERE a.attrelid = '$2'::regclass AND a.attname = '$3'"
}

@test "identity columns: created with rows, values carried forward, added, dropped; a promoted target goes on" {
	tp_psql "$SRC" "CREATE TABLE public.idt (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, v text);
		INSERT INTO public.idt (v) VALUES ('a'), ('b'), ('c')"
	run ship
	assert_success
	same public.idt
	# the target's identity is BY DEFAULT: tp-apply writes the source's ids
	assert_equal "$(identity "$DST" public.idt id)" "d 3"
	tp_psql "$SRC" "INSERT INTO public.idt (v) VALUES ('d'), ('e'); UPDATE public.idt SET v = 'B' WHERE id = 2"
	run ship
	assert_success
	same public.idt
	assert_equal "$(identity "$DST" public.idt id)" "d 5"
	# an identity added to a column that has rows, rows using it in the same transaction
	tp_psql "$SRC" "BEGIN; ALTER TABLE public.t ALTER COLUMN id ADD GENERATED BY DEFAULT AS IDENTITY (START 100);
		INSERT INTO public.t (a) VALUES ('x'), ('y'); COMMIT"
	run ship
	assert_success
	same public.t
	assert_equal "$(identity "$DST" public.t id)" "d 101"
	tp_psql "$SRC" "ALTER TABLE public.idt ALTER COLUMN id DROP IDENTITY"
	run ship
	assert_success
	assert_equal "$(identity "$DST" public.idt id)" "- "
	# promoted: the target's next id follows the source's last one
	run -0 tp_psql "$DST" "INSERT INTO public.t (a) VALUES ('on the target') RETURNING id"
	assert_output 102
}

@test "a type and a sequence dropped and made again under their names in one delta" {
	tp_psql "$SRC" "CREATE TYPE public.kind AS ENUM ('a', 'b'); CREATE SEQUENCE public.counter"
	run ship
	assert_success
	tp_psql "$SRC" "DROP TYPE public.kind; CREATE TYPE public.kind AS ENUM ('x', 'y', 'z');
		DROP SEQUENCE public.counter; CREATE SEQUENCE public.counter START 500 INCREMENT 5"
	tp_psql "$SRC" "ALTER TABLE public.t ADD COLUMN k public.kind; UPDATE public.t SET k = 'z' WHERE id = 1"
	run ship
	assert_success
	same public.t
	assert_equal "$(labels "$DST" public.kind)" "x,y,z"
	run -0 tp_psql "$DST" "SELECT seqstart || ' ' || seqincrement FROM pg_sequence
		WHERE seqrelid = 'public.counter'::regclass"
	assert_output "500 5"
	# a domain in the enum's place
	tp_psql "$SRC" "ALTER TABLE public.t DROP COLUMN k; DROP TYPE public.kind;
		CREATE DOMAIN public.kind AS int CHECK (VALUE > 0)"
	run ship
	assert_success
	# (a column dropped and another of as many columns added in one delta
	# is ambiguous in diff mode: a cut in between)
	tp_psql "$SRC" "ALTER TABLE public.t ADD COLUMN k public.kind; UPDATE public.t SET k = 7 WHERE id = 2"
	run ship
	assert_success
	same public.t
	run -0 tp_psql "$DST" "SELECT typtype FROM pg_type WHERE oid = 'public.kind'::regtype"
	assert_output d
}
