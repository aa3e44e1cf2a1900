#!/usr/bin/env bats
# Schema changes in diff mode, part 3: foreign keys, functions and
# procedures, extensions; created, changed and dropped on the source,
# found so on the target, with the rows that need them in the same batch.
# As the non-superuser role; the fixtures are ddl.bats's (ddl_helper.bash).

load helper
load ddl_helper

# fkeys DB TABLE: the table's foreign keys, by name
fkeys() {
	tp_psql "$1" "SELECT coalesce(string_agg(conname || ' ' || pg_catalog.pg_get_constraintdef(oid),
		'; ' ORDER BY conname), '-') FROM pg_catalog.pg_constraint
		WHERE conrelid = '$2'::regclass AND contype = 'f'"
}

# routines DB SCHEMA: the functions and procedures of a schema, as
# pg_get_functiondef writes them (which names the schema)
routines() {
	tp_psql "$1" "SELECT coalesce(string_agg(pg_catalog.pg_get_functiondef(p.oid), '' ORDER BY
		p.proname, pg_catalog.pg_get_function_identity_arguments(p.oid)), '-')
		FROM pg_catalog.pg_proc p WHERE p.pronamespace = '$2'::regnamespace
		AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d WHERE d.deptype = 'e'
			AND d.classid = 'pg_catalog.pg_proc'::regclass AND d.objid = p.oid)"
}

# extensions DB: name and version of each extension but plpgsql
extensions() {
	tp_psql "$1" "SELECT coalesce(string_agg(extname || ' ' || extversion || ' '
		|| extnamespace::regnamespace, ', ' ORDER BY extname), '-')
		FROM pg_catalog.pg_extension WHERE extname <> 'plpgsql'"
}

@test "foreign keys: added after the rows, renamed, changed in place, dropped" {
	tp_psql "$SRC" "BEGIN;
		CREATE TABLE public.parent (id int PRIMARY KEY, code text NOT NULL UNIQUE);
		CREATE TABLE public.child (id int PRIMARY KEY, pid int, pcode text,
			CONSTRAINT child_pid_fkey FOREIGN KEY (pid) REFERENCES public.parent);
		INSERT INTO public.parent VALUES (1, 'a'), (2, 'b');
		INSERT INTO public.child VALUES (10, 1, 'a'), (20, 2, 'b');
		ALTER TABLE public.child ADD CONSTRAINT \"child code\" FOREIGN KEY (pcode)
			REFERENCES public.parent (code) MATCH FULL ON UPDATE CASCADE
			DEFERRABLE INITIALLY DEFERRED; COMMIT"
	run ship
	assert_success
	same public.parent public.child
	assert_equal "$(fkeys "$DST" public.child)" "$(fkeys "$SRC" public.child)"
	# a key added to existing tables, in the batch that writes the rows it needs
	tp_psql "$SRC" "BEGIN; INSERT INTO public.parent VALUES (3, 'c');
		UPDATE public.t SET a = 'c' WHERE id = 1; UPDATE public.t SET a = NULL WHERE id = 2;
		ALTER TABLE public.t ADD CONSTRAINT t_a_fkey FOREIGN KEY (a) REFERENCES public.parent (code)
			NOT VALID; COMMIT"
	run ship
	assert_success
	same public.t public.parent
	assert_equal "$(fkeys "$DST" public.t)" "$(fkeys "$SRC" public.t)"
	# renamed; changed in place (same constraint); the tables and columns renamed
	tp_psql "$SRC" "ALTER TABLE public.child RENAME CONSTRAINT child_pid_fkey TO child_parent;
		ALTER TABLE public.child ALTER CONSTRAINT \"child code\" NOT DEFERRABLE;
		ALTER TABLE public.t VALIDATE CONSTRAINT t_a_fkey;
		ALTER TABLE public.parent RENAME TO mother; ALTER TABLE public.mother RENAME code TO label;
		UPDATE public.mother SET label = 'bb' WHERE id = 2"
	run ship
	assert_success
	same public.mother public.child public.t
	assert_equal "$(fkeys "$DST" public.child)" "$(fkeys "$SRC" public.child)"
	assert_equal "$(fkeys "$DST" public.t)" "$(fkeys "$SRC" public.t)"
	assert_equal "$(fkeys "$DST" public.child)" "child code FOREIGN KEY (pcode) REFERENCES mother(label) MATCH FULL ON UPDATE CASCADE; child_parent FOREIGN KEY (pid) REFERENCES mother(id)"
	# dropped: the rows after it need it gone
	tp_psql "$SRC" "ALTER TABLE public.child DROP CONSTRAINT child_parent;
		INSERT INTO public.child VALUES (30, 99, NULL)"
	run ship
	assert_success
	same public.child
	assert_equal "$(fkeys "$DST" public.child)" "$(fkeys "$SRC" public.child)"
	# both tables dropped in one go, the referenced one first
	tp_psql "$SRC" "ALTER TABLE public.t DROP CONSTRAINT t_a_fkey;
		DROP TABLE public.mother CASCADE; DROP TABLE public.child"
	run ship
	assert_success
	assert_equal "$(tp_psql "$DST" "SELECT count(*) FROM pg_catalog.pg_class
		WHERE relname IN ('mother', 'child')")" 0
}

@test "a foreign key with ON DELETE CASCADE: cascading deletes after it apply cleanly" {
	tp_psql "$SRC" "CREATE TABLE public.p (id int PRIMARY KEY);
		CREATE TABLE public.c (id int PRIMARY KEY, pid int REFERENCES public.p ON DELETE CASCADE
			ON UPDATE SET NULL);
		INSERT INTO public.p VALUES (1), (2), (3);
		INSERT INTO public.c VALUES (10, 1), (11, 1), (20, 2), (30, 3)"
	cut
	# a second batch in the same tp-apply run as the one adding the key
	tp_psql "$SRC" "DELETE FROM public.p WHERE id = 1"
	tp_psql "$SRC" "UPDATE public.p SET id = 33 WHERE id = 3"
	run ship
	assert_success
	same public.p public.c
	assert_equal "$(fkeys "$DST" public.c)" "$(fkeys "$SRC" public.c)"
	tp_psql "$SRC" "DELETE FROM public.p WHERE id = 2"
	run ship
	assert_success
	same public.p public.c
	assert_equal "$(rows "$DST" public.c)" "(30,)"
}

@test "TRUNCATE of tables joined by a foreign key, in one statement or by CASCADE, applies" {
	tp_psql "$SRC" "CREATE TABLE public.p (id int PRIMARY KEY);
		CREATE TABLE public.c (id int PRIMARY KEY, pid int REFERENCES public.p);
		INSERT INTO public.p VALUES (1), (2); INSERT INTO public.c VALUES (10, 1), (20, 2)"
	run ship
	assert_success
	tp_psql "$SRC" "TRUNCATE public.p, public.c; INSERT INTO public.p VALUES (3); INSERT INTO public.c VALUES (30, 3)"
	run ship
	assert_success
	same public.p public.c
	tp_psql "$SRC" "TRUNCATE public.p CASCADE; INSERT INTO public.p VALUES (4)"
	run ship
	assert_success
	same public.p public.c
	assert_equal "$(rows "$DST" public.p)" "(4)"
	assert_equal "$(rows "$DST" public.c)" ""
}

@test "a foreign key to a table the target does not replicate is not shipped" {
	tp_psql "$DST" "CREATE TABLE public.tmp_codes (code text PRIMARY KEY)"
	tp_psql "$SRC" "CREATE TABLE public.tmp_codes (code text PRIMARY KEY);
		INSERT INTO public.tmp_codes VALUES ('x');
		CREATE TABLE public.uses (id int PRIMARY KEY, code text REFERENCES public.tmp_codes,
			self int REFERENCES public.uses);
		INSERT INTO public.uses VALUES (1, 'x', NULL), (2, NULL, 1)"
	run ship
	assert_success
	same public.uses
	assert_equal "$(fkeys "$DST" public.uses)" "uses_self_fkey FOREIGN KEY (self) REFERENCES uses(id)"
	assert_equal "$(rows "$DST" public.tmp_codes)" ""
}

@test "functions: created, replaced, renamed, moved, dropped; a procedure" {
	tp_psql "$SRC" "CREATE FUNCTION public.twice(x int, y int DEFAULT 1) RETURNS int
		LANGUAGE sql IMMUTABLE AS 'SELECT x * 2 * y';
		CREATE FUNCTION public.\"Odd name\"(VARIADIC v text[]) RETURNS text
		LANGUAGE plpgsql AS \$\$
		BEGIN
			RETURN array_to_string(v, '+');  -- a body of several lines
		END \$\$;
		CREATE PROCEDURE public.bump(INOUT n int, step int DEFAULT 1) LANGUAGE plpgsql
		AS \$\$ BEGIN n := n + step; END \$\$"
	run ship
	assert_success
	assert_equal "$(routines "$DST" public)" "$(routines "$SRC" public)"
	run tp_psql "$DST" "SELECT public.twice(4), public.\"Odd name\"('a', 'b')" "CALL public.bump(1, 2)"
	assert_output "8|a+b
3"
	tp_psql "$SRC" "CREATE OR REPLACE FUNCTION public.twice(x int, y int DEFAULT 1) RETURNS int
		LANGUAGE sql IMMUTABLE STRICT AS 'SELECT x * 3 * y';
		ALTER FUNCTION public.\"Odd name\"(text[]) RENAME TO joined;
		CREATE SCHEMA sales; ALTER PROCEDURE public.bump(int, int) SET SCHEMA sales"
	run ship
	assert_success
	assert_equal "$(routines "$DST" public)" "$(routines "$SRC" public)"
	assert_equal "$(routines "$DST" sales)" "$(routines "$SRC" sales)"
	run tp_psql "$DST" "SELECT public.twice(4), public.joined('a')" "CALL sales.bump(1)"
	assert_output "12|a
2"
	# dropped and created again with another result type, in one delta
	tp_psql "$SRC" "BEGIN; DROP FUNCTION public.twice(int, int);
		CREATE FUNCTION public.twice(x int, y int DEFAULT 1) RETURNS numeric LANGUAGE sql
		AS 'SELECT x * 2.5 * y'; COMMIT"
	run ship
	assert_success
	assert_equal "$(routines "$DST" public)" "$(routines "$SRC" public)"
	assert_equal "$(tp_psql "$DST" "SELECT public.twice(2)")" 5.0
	tp_psql "$SRC" "DROP FUNCTION public.twice(int, int); DROP FUNCTION public.joined;
		DROP PROCEDURE sales.bump"
	run ship
	assert_success
	assert_equal "$(routines "$DST" public)" "-"
	assert_equal "$(routines "$DST" sales)" "-"
}

@test "a function used by a default: created with its table and rows, dropped once unused" {
	# total()'s body uses the table, created after it: a body is not checked
	# on creation (as pg_dump restores), on the target either
	tp_psql "$SRC" "BEGIN; SET LOCAL check_function_bodies = off;
		CREATE FUNCTION public.total() RETURNS bigint LANGUAGE sql
			AS 'SELECT count(*) FROM public.numbered';
		CREATE FUNCTION public.label(n int) RETURNS text LANGUAGE sql IMMUTABLE AS 'SELECT ''n'' || n';
		CREATE TABLE public.numbered (id int PRIMARY KEY, l text DEFAULT public.label(7));
		INSERT INTO public.numbered (id) VALUES (1), (2);
		ALTER TABLE public.t ADD COLUMN l text DEFAULT public.label(0);
		INSERT INTO public.t (id) VALUES (3);
		COMMIT"
	run ship
	assert_success
	same public.numbered public.t
	assert_equal "$(routines "$DST" public)" "$(routines "$SRC" public)"
	assert_equal "$(rows "$DST" public.numbered)" "(1,n7) (2,n7)"
	assert_equal "$(tp_psql "$DST" "SELECT public.total()")" 2
	tp_psql "$SRC" "BEGIN; ALTER TABLE public.numbered ALTER COLUMN l DROP DEFAULT;
		ALTER TABLE public.t DROP COLUMN l; DROP FUNCTION public.label(int);
		INSERT INTO public.numbered VALUES (3, 'plain'); COMMIT"
	run ship
	assert_success
	same public.numbered public.t
	assert_equal "$(routines "$DST" public)" "$(routines "$SRC" public)"
	assert_equal "$(tp_psql "$DST" "SELECT count(*) FROM pg_catalog.pg_proc WHERE proname = 'label'")" 0
}

@test "extensions: created, a column of its type with rows, updated, created again, dropped" {
	tp_psql "$SRC" "BEGIN; CREATE EXTENSION citext VERSION '1.5' SCHEMA public;
		CREATE TABLE public.emails (id int PRIMARY KEY, e public.citext UNIQUE);
		INSERT INTO public.emails VALUES (1, 'A@x.org'), (2, 'b@X.org');
		ALTER TABLE public.t ADD COLUMN e public.citext; UPDATE public.t SET e = 'Mixed' WHERE id = 1;
		COMMIT"
	run ship
	assert_success
	same public.emails public.t
	assert_equal "$(extensions "$DST")" "citext 1.5 public"
	# the extension's own functions and types are its, not shipped apart
	assert_equal "$(routines "$DST" public)" "-"
	run tp_psql "$DST" "SELECT id FROM public.emails WHERE e = 'a@X.ORG'"
	assert_output 1
	tp_psql "$SRC" "ALTER EXTENSION citext UPDATE TO '1.6'; INSERT INTO public.emails VALUES (3, 'C@x');
		CREATE EXTENSION hstore VERSION '1.7' SCHEMA public"
	run ship
	assert_success
	same public.emails
	assert_equal "$(extensions "$DST")" "citext 1.6 public, hstore 1.7 public"
	# dropped and created again in one delta: the new one counts
	tp_psql "$SRC" "BEGIN; DROP EXTENSION hstore; CREATE EXTENSION hstore SCHEMA public; COMMIT"
	run ship
	assert_success
	assert_equal "$(extensions "$DST")" "$(extensions "$SRC")"
	assert_equal "$(extensions "$DST")" "citext 1.6 public, hstore 1.8 public"
	tp_psql "$SRC" "BEGIN; DROP TABLE public.emails; ALTER TABLE public.t DROP COLUMN e;
		DROP EXTENSION citext; DROP EXTENSION hstore; COMMIT"
	run ship
	assert_success
	same public.t
	assert_equal "$(extensions "$DST")" "-"
}

@test "apply_schema remaps a foreign key's referenced table and a function's schema" {
	tp_psql "$DST" "CREATE SCHEMA copy; CREATE TABLE copy.t (id int PRIMARY KEY, a text)"
	tp_psql "$DST" "INSERT INTO copy.t VALUES (1, 'one'), (2, 'two')"
	# setup's configuration again, with apply_schema (and the suite's ddl mode)
	tp_pair_config "public.*, sales*.*" "exclude = public.tmp_*" "apply_schema = copy"
	ddl_mode_config
	tp_psql "$SRC" "CREATE FUNCTION public.shout(s text) RETURNS text LANGUAGE sql
			AS 'SELECT upper(s)';
		CREATE TABLE public.kids (id int PRIMARY KEY, tid int REFERENCES public.t ON DELETE CASCADE,
			v text);
		INSERT INTO public.kids VALUES (1, 1, public.shout('x')), (2, 2, NULL)"
	run ship
	assert_success
	assert_equal "$(rows "$DST" copy.kids)" "$(rows "$SRC" public.kids)"
	assert_equal "$(fkeys "$DST" copy.kids)" "kids_tid_fkey FOREIGN KEY (tid) REFERENCES copy.t(id) ON DELETE CASCADE"
	assert_equal "$(tp_psql "$DST" "SELECT copy.shout('a')")" A
	tp_psql "$SRC" "ALTER FUNCTION public.shout(text) RENAME TO yell; DELETE FROM public.t WHERE id = 1"
	run ship
	assert_success
	assert_equal "$(rows "$DST" copy.kids)" "$(rows "$SRC" public.kids)"
	assert_equal "$(rows "$DST" copy.t)" "$(rows "$SRC" public.t)"
	assert_equal "$(tp_psql "$DST" "SELECT copy.yell('b')")" B
	assert_equal "$(tp_psql "$DST" "SELECT count(*) FROM pg_catalog.pg_proc
		WHERE pronamespace = 'public'::regnamespace")" 0
}
