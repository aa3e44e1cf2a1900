#!/usr/bin/env bats
# tp-apply: batches made by tp-install + tp-batch on a source database are
# applied to a target database exactly once, in order, with every value
# unchanged; bad batches are refused and quarantined; divergence, gaps,
# kills and signals leave the target and its ledger consistent.

load helper
load drop_helper        # craft: hostile variants of a batch; seqname

setup_file() {
	tp_cluster_start
}

teardown_file() {
	tp_cluster_stop
}

setup() {
	tp_pair_dbs
	tp_pair_config "public.*, Weird*.*, order.*"
	BG=
}

teardown() {
	[[ -z $BG ]] || kill -9 "$BG" 2>/dev/null || true
}

# both SQL...: run on source and target (the schema both need)
both() {
	tp_psql "$SRC" "$@"
	tp_psql "$DST" "$@"
}

# install both nodes (tables must exist first: capture triggers go on them)
install() {
	tp-install -c "$W/src.ini"
	tp-install -c "$W/dst.ini"
}

# ship: cut batches on the source and move them into the target's inbox
ship() {
	tp-batch -c "$W/src.ini"
	tp_to_inbox
}

# checksum DB TABLE KEY: row count and md5 of every row's text form
checksum() {
	tp_psql "$1" "SELECT count(*) || ':' || coalesce(md5(string_agg(x::text, ',' ORDER BY $3)), '')
		FROM $2 x"
}

# same TABLE KEY: the table is identical on both sides (and not empty)
same() {
	local a b
	a=$(checksum "$SRC" "$1" "$2")
	b=$(checksum "$DST" "$1" "$2")
	assert_equal "$b" "$a"
	[[ $a != 0:* ]]
}

ledger() {
	tp_psql "$DST" "SELECT coalesce(max(seq), 0) FROM teleport.applied WHERE source = 'src'"
}

@test "nothing to do: exit 0, silent" {
	both "CREATE TABLE public.t (id int PRIMARY KEY)"
	install
	run -0 tp-apply -c "$W/dst.ini"
	assert_output ""
	run -0 ledger
	assert_output 0
}

@test "insert, update, delete, key change: target equals source, batch moved to applied/" {
	both "CREATE TABLE public.t (id int PRIMARY KEY, v text)"
	install
	tp_psql "$SRC" "INSERT INTO public.t SELECT g, 'v' || g FROM generate_series(1, 50) g"
	tp_psql "$SRC" "UPDATE public.t SET v = NULL WHERE id % 3 = 0" \
		"DELETE FROM public.t WHERE id > 45" \
		"UPDATE public.t SET id = 100, v = 'moved' WHERE id = 1" \
		"INSERT INTO public.t VALUES (200, E'tab\there\nnewline \\\\ backslash')"
	ship
	run -0 tp-apply -c "$W/dst.ini"
	assert_output ""
	same public.t id
	run -0 ledger
	assert_output 1
	[ -f "$INBOX/applied/$(seqname 1)" ]
	[ ! -e "$INBOX/$(seqname 1)" ]
	run -0 tp_psql "$DST" "SELECT source, seq, kind, events, length(digest) FROM teleport.apply_log"
	assert_output "src|1|rows|73|64"
	# and again: nothing to do
	run -0 tp-apply -c "$W/dst.ini"
	assert_output ""
}

@test "type matrix: every value round-trips unchanged, TOASTed ones too" {
	both "CREATE TYPE public.mood AS ENUM ('sad', 'ok', 'happy')" \
		"CREATE TYPE public.pair AS (x int, y text)" \
		"CREATE DOMAIN public.posint AS int CHECK (VALUE > 0)" \
		"CREATE TABLE public.types (id int PRIMARY KEY, n numeric, n2 numeric(40,20),
			m money, b bytea, ia int[], ta text[], j json, jb jsonb, ts timestamp,
			tz timestamptz, iv interval, d date, tm time, ttz timetz, u uuid, ip inet,
			cn cidr, mac macaddr, r int4range, tr tstzrange, nr numrange, e public.mood,
			c public.pair, dm public.posint, bo bool, f4 real, f8 float8, bits varbit,
			pt point, x xml, big text)"
	install
	tp_psql "$SRC" "INSERT INTO public.types VALUES
		(1, 'NaN', 12345678901234567890.12345678901234567890, '-1234.56', '\\x00ff5c0a0d09',
		 '[0:1]={1,2}', '{\"a,b\",\"q\\\"uote\",NULL,\"back\\\\slash\",\"\"}',
		 '{\"k\": [1, 2.50, \"\\u00e9\\t\"], \"z\": null}', '{\"b\": 1, \"a\": [true, {}]}',
		 '2024-02-29 23:59:59.999999', '2024-06-01 12:00:00+02', '1 year 2 mons -3 days 04:05:06.7',
		 '0001-01-01 BC', '24:00:00', '12:34:56+05:30', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
		 '192.168.1.5/24', '10.0.0.0/8', '08:00:2b:01:02:03', '[1,10)', '[2024-01-01,infinity)',
		 '(,5.5]', 'happy', ROW(7, 'a \"quoted\", (paren)'), 42, true, 'NaN', '-Infinity',
		 B'10110', '(1.5,-2)', '<a x=\"1\">t&amp;</a>', E'multi\nline\ttab\\\\ \r cr ü €'),
		(2, '-0.000000000000000000001', '0.00000000000000000001', '0', '\\x', '{}', '{{a,b},{c,d}}',
		 '\"\"', '[]', 'infinity', '-infinity', '0', 'infinity', '00:00', '00:00+00',
		 '00000000-0000-0000-0000-000000000000', '::1', '::/0', 'ff:ff:ff:ff:ff:ff', 'empty',
		 'empty', '[-1e-20,1e20]', 'sad', ROW(NULL, NULL), 1, false, 3.4028235e38,
		 5e-324, B'', '(0,0)', '', ''),
		(3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
		 NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
		 NULL, NULL, NULL, NULL)"
	# > 1 MB, not compressible into one page: stored out of line (TOAST)
	tp_psql "$SRC" "INSERT INTO public.types (id, big, ia)
		SELECT 4, string_agg(md5(g::text), E'\\t'), '{1,NULL,3}' FROM generate_series(1, 40000) g"
	tp_psql "$SRC" "UPDATE public.types SET big = big || E'\\\\\\n', n = n + 1 WHERE id = 4" \
		"UPDATE public.types SET c = ROW(8, NULL), e = 'ok', ia = '[-2:-1]={5,6}' WHERE id = 1" \
		"UPDATE public.types SET id = 5, n = '-Infinity' WHERE id = 2"
	ship
	run -0 tp-apply -c "$W/dst.ini"
	assert_output ""
	same public.types id
	run -0 tp_psql "$DST" "SELECT length(big) > 1000000, array_lower(ia, 1) FROM public.types WHERE id IN (1, 4) ORDER BY id"
	assert_output "f|-2
t|1"
}

@test "hostile identifiers: quotes, spaces, upper case, unicode, reserved words" {
	both "CREATE SCHEMA \"Weird \"\"Schema\"\" é\"" \
		"CREATE SCHEMA \"order\"" \
		"CREATE TABLE \"Weird \"\"Schema\"\" é\".\"Table, With \"\"Quotes\"\"\" (
			\"Key Col\" int, \"select\" text, \"ÜNICODE ✓\" text, \"a\tb\" int, \"UPPER\" int,
			PRIMARY KEY (\"select\", \"Key Col\"))" \
		"CREATE TABLE \"order\".\"table\" (\"from\" int PRIMARY KEY, \"where\" text)"
	install
	tp_psql "$SRC" "INSERT INTO \"Weird \"\"Schema\"\" é\".\"Table, With \"\"Quotes\"\"\"
			SELECT g, 'k' || (g % 3), 'ü' || g, g, g FROM generate_series(1, 30) g" \
		"UPDATE \"Weird \"\"Schema\"\" é\".\"Table, With \"\"Quotes\"\"\" SET \"select\" = 'new', \"UPPER\" = -1 WHERE \"Key Col\" < 4" \
		"DELETE FROM \"Weird \"\"Schema\"\" é\".\"Table, With \"\"Quotes\"\"\" WHERE \"Key Col\" = 10" \
		"INSERT INTO \"order\".\"table\" VALUES (1, 'a'), (2, 'b')" \
		"UPDATE \"order\".\"table\" SET \"from\" = 3 WHERE \"from\" = 1" \
		"DELETE FROM \"order\".\"table\" WHERE \"from\" = 2"
	ship
	run -0 tp-apply -c "$W/dst.ini"
	assert_output ""
	same "\"Weird \"\"Schema\"\" é\".\"Table, With \"\"Quotes\"\"\"" '"Key Col"'
	same '"order"."table"' '"from"'
}

@test "key updates: swap through a temporary value, shifts, composite keys" {
	both "CREATE TABLE public.k (id int PRIMARY KEY, v text)" \
		"CREATE TABLE public.ck (a int, b text, c int, PRIMARY KEY (b, a))"
	install
	tp_psql "$SRC" "INSERT INTO public.k SELECT g, 'v' || g FROM generate_series(1, 20) g" \
		"INSERT INTO public.ck SELECT g % 4, 'b' || (g / 4), g FROM generate_series(1, 20) g"
	ship
	run -0 tp-apply -c "$W/dst.ini"
	tp_psql "$SRC" "BEGIN; UPDATE public.k SET id = -1 WHERE id = 1;
		UPDATE public.k SET id = 1 WHERE id = 2; UPDATE public.k SET id = 2 WHERE id = -1; COMMIT"
	tp_psql "$SRC" "UPDATE public.k SET id = id + 1000 WHERE id > 10" \
		"UPDATE public.ck SET a = a + 10, c = -c WHERE b = 'b1'" \
		"UPDATE public.ck SET b = 'z' || b WHERE a = 2" \
		"DELETE FROM public.ck WHERE a = 3"
	ship
	run -0 tp-apply -c "$W/dst.ini"
	assert_output ""
	same public.k id
	same public.ck b,a
	run -0 tp_psql "$DST" "SELECT v FROM public.k WHERE id IN (1, 2) ORDER BY id"
	assert_output "v2
v1"
}

@test "foreign keys, delete and truncate apply in source order" {
	both "CREATE TABLE public.parent (id int PRIMARY KEY, v text)" \
		"CREATE TABLE public.child (id int PRIMARY KEY, pid int NOT NULL REFERENCES public.parent, v text)" \
		"CREATE TABLE public.scratch (id int PRIMARY KEY)"
	install
	tp_psql "$SRC" "BEGIN;
		INSERT INTO public.parent SELECT g, 'p' || g FROM generate_series(1, 20) g;
		INSERT INTO public.child SELECT g, g % 20 + 1, 'c' || g FROM generate_series(1, 100) g;
		INSERT INTO public.parent VALUES (21, 'late');
		INSERT INTO public.child VALUES (101, 21, 'late child');
		COMMIT" \
		"INSERT INTO public.scratch SELECT generate_series(1, 30)"
	tp_psql "$SRC" "BEGIN; DELETE FROM public.child WHERE pid = 5; DELETE FROM public.parent WHERE id = 5; COMMIT" \
		"UPDATE public.child SET pid = 21 WHERE pid = 7" \
		"TRUNCATE public.scratch" \
		"INSERT INTO public.scratch VALUES (7)"
	ship
	run -0 tp-apply -c "$W/dst.ini"
	assert_output ""
	same public.parent id
	same public.child id
	same public.scratch id
	run -0 tp_psql "$DST" "SELECT count(*) FROM public.scratch"
	assert_output 1
}

@test "ON DELETE CASCADE on the target: the captured child deletes are not divergence" {
	both "CREATE TABLE public.p (id int PRIMARY KEY)" \
		"CREATE TABLE public.c (id int PRIMARY KEY, pid int REFERENCES public.p ON DELETE CASCADE ON UPDATE CASCADE)"
	install
	tp_psql "$SRC" "INSERT INTO public.p VALUES (1), (2), (3)" \
		"INSERT INTO public.c VALUES (10, 1), (11, 1), (20, 2), (30, 3)"
	tp_psql "$SRC" "DELETE FROM public.p WHERE id = 1" \
		"UPDATE public.p SET id = 22 WHERE id = 2" \
		"BEGIN; DELETE FROM public.c WHERE id = 30; DELETE FROM public.p WHERE id = 3; COMMIT"
	ship
	run -0 tp-apply -c "$W/dst.ini"
	assert_output ""
	same public.p id
	same public.c id
	run -0 tp_psql "$DST" "SELECT string_agg(id || ':' || pid, ',' ORDER BY id) FROM public.c"
	assert_output "20:22"
	# a delete that matches nothing where no cascade explains it still stops
	tp_psql "$DST" "DELETE FROM public.p"
	tp_psql "$SRC" "DELETE FROM public.p"
	ship
	run -1 tp-apply -c "$W/dst.ini"
	assert_output --partial 'DELETE FROM "public"."p" matched no row (target diverged)'
}

@test "divergence stops the stream: exit 1, one line naming batch, line and table, no values" {
	both "CREATE TABLE public.t (id int PRIMARY KEY, v text)"
	install
	tp_psql "$SRC" "INSERT INTO public.t VALUES (1, 'secret-one'), (2, 'secret-two')"
	ship
	run -0 tp-apply -c "$W/dst.ini"
	tp_psql "$DST" "DELETE FROM public.t WHERE id = 2"
	tp_psql "$SRC" "INSERT INTO public.t VALUES (3, 'secret-three')" \
		"UPDATE public.t SET v = 'secret-changed' WHERE id = 2"
	ship
	run -1 tp-apply -c "$W/dst.ini"
	assert_output 'tp-apply: error: batch src/2 line 3: UPDATE "public"."t" matched no row (target diverged)'
	refute_output --partial secret
	run -0 ledger
	assert_output 1
	[ -f "$INBOX/$(seqname 2)" ]
	# nothing of the batch is applied: row 3 is not there
	run -0 tp_psql "$DST" "SELECT count(*) FROM public.t"
	assert_output 1
	# a delete that finds nothing diverges as well
	tp_psql "$DST" "INSERT INTO public.t VALUES (2, 'secret-two')"
	run -0 tp-apply -c "$W/dst.ini"
	tp_psql "$DST" "DELETE FROM public.t WHERE id = 3"
	tp_psql "$SRC" "DELETE FROM public.t WHERE id = 3"
	ship
	run -1 tp-apply -c "$W/dst.ini"
	assert_output --partial 'batch src/3 line 2: DELETE FROM "public"."t" matched no row (target diverged)'
}

@test "errors from the server never show row values" {
	both "CREATE TABLE public.t (id int PRIMARY KEY, v text)"
	install
	tp_psql "$DST" "ALTER TABLE public.t ALTER v TYPE varchar(3)"
	tp_psql "$SRC" "INSERT INTO public.t VALUES (1, 'secret-long-value')"
	ship
	run -1 tp-apply -c "$W/dst.ini"
	assert_output --partial "batch src/1 line 2"
	assert_output --partial "22001"
	refute_output --partial secret
	tp_psql "$DST" "ALTER TABLE public.t ALTER v TYPE int USING NULL"
	run -1 tp-apply -c "$W/dst.ini"
	assert_output --partial "22P02"
	refute_output --partial secret
	tp_psql "$DST" "ALTER TABLE public.t ALTER v TYPE text" \
		"INSERT INTO public.t VALUES (1, 'secret-target')"
	run -1 tp-apply -c "$W/dst.ini"
	assert_output --partial "23505"
	refute_output --partial secret
	run -0 ledger
	assert_output 0
}

@test "a missing table on the target: exit 75 waiting for a schema change, then applied" {
	tp_psql "$SRC" "CREATE TABLE public.t (id int PRIMARY KEY, v text)"
	tp_psql "$DST" "CREATE TABLE public.other (id int)"
	install
	tp_psql "$SRC" "INSERT INTO public.t VALUES (1, 'a')"
	ship
	run -75 tp-apply -c "$W/dst.ini"
	assert_output --partial "42P01"
	assert_output --partial "waiting for a schema change"
	tp_psql "$DST" "CREATE TABLE public.t (id int PRIMARY KEY)"
	run -75 tp-apply -c "$W/dst.ini"
	assert_output --partial "42703"
	tp_psql "$DST" "ALTER TABLE public.t ADD v text"
	run -0 tp-apply -c "$W/dst.ini"
	same public.t id
}

@test "a gap in the inbox: exit 75 waiting for the missing batch, then catches up" {
	both "CREATE TABLE public.t (id int PRIMARY KEY)"
	install
	for i in 1 2 3; do
		tp_psql "$SRC" "INSERT INTO public.t VALUES ($i)"
		tp-batch -c "$W/src.ini"
	done
	mkdir -p "$INBOX" "$W/held"
	mv "$OUTBOX/$(seqname 2)" "$W/held/"
	mv "$OUTBOX"/*.tar.zst "$INBOX/"
	run -75 tp-apply -c "$W/dst.ini"
	assert_output "tp-apply: warning: waiting for batch src/2 ($(seqname 3) is there already)"
	run -0 ledger
	assert_output 1
	mv "$W/held/$(seqname 2)" "$INBOX/"
	run -0 tp-apply -c "$W/dst.ini"
	assert_output ""
	run -0 ledger
	assert_output 3
	same public.t id
}

@test "replay by hand: next one applies, old or out of order refused unless --force" {
	both "CREATE TABLE public.t (id int PRIMARY KEY, v int)"
	install
	for i in 1 2 3; do
		tp_psql "$SRC" "INSERT INTO public.t VALUES ($i, 0)" "UPDATE public.t SET v = v + 1"
		tp-batch -c "$W/src.ini"
	done
	local b1=$OUTBOX/$(seqname 1) b2=$OUTBOX/$(seqname 2) b3=$OUTBOX/$(seqname 3)
	run -1 tp-apply -c "$W/dst.ini" "$b2"
	assert_output --partial "batch src/2 is out of order: the next batch of src is 1"
	run -0 tp-apply -c "$W/dst.ini" "$b1"
	assert_output ""
	run -1 tp-apply -c "$W/dst.ini" "$b1"
	assert_output --partial "batch src/1 is applied already (the ledger of src is at 1)"
	assert_output --partial "hint: --force"
	run -0 tp-apply -c "$W/dst.ini" "$b2" "$b3"
	same public.t id
	run -0 ledger
	assert_output 3
	# --force replays an applied batch; the ledger does not move back
	tp_psql "$DST" "DELETE FROM public.t"
	run -0 tp-apply -c "$W/dst.ini" --force "$b1"
	run -0 ledger
	assert_output 3
	run -0 tp_psql "$DST" "SELECT id, v FROM public.t"
	assert_output "1|1"
	run -0 tp_psql "$DST" "SELECT count(*) FROM teleport.apply_log"
	assert_output 3
	# --force out of order: a later batch moves the ledger forward
	tp_psql "$SRC" "INSERT INTO public.t VALUES (5, 0)"
	tp-batch -c "$W/src.ini"
	tp_psql "$SRC" "INSERT INTO public.t VALUES (6, 0)"
	tp-batch -c "$W/src.ini"
	run -1 tp-apply -c "$W/dst.ini" "$OUTBOX/$(seqname 5)"
	run -0 tp-apply -c "$W/dst.ini" --force "$OUTBOX/$(seqname 5)"
	run -0 ledger
	assert_output 5
	run -0 tp_psql "$DST" "SELECT id FROM public.t ORDER BY id"
	assert_output "1
6"
	# --force is for named files only
	run -64 tp-apply -c "$W/dst.ini" --force
}

@test "--dry-run prints the SQL, changes nothing; the SQL itself reproduces the batch" {
	both "CREATE TABLE public.t (id int PRIMARY KEY, v text)"
	install
	tp_psql "$SRC" "INSERT INTO public.t SELECT g, 'v' || g FROM generate_series(1, 20) g" \
		"INSERT INTO public.t VALUES (21, E'it''s \\\\ a\ttab')" \
		"UPDATE public.t SET v = NULL WHERE id = 3" \
		"DELETE FROM public.t WHERE id = 4"
	ship
	run --separate-stderr -0 tp-apply -c "$W/dst.ini" --dry-run
	[ -z "$stderr" ]
	assert_line 'BEGIN;'
	assert_line "SELECT pg_catalog.set_config('teleport.origin', 'src', true);"
	assert_line 'COPY "public"."t" ("id", "v") FROM STDIN;'
	assert_line 'UPDATE "public"."t" SET "id" = '"'3'"', "v" = NULL WHERE "id" = '"'3'"';'
	assert_line 'DELETE FROM "public"."t" WHERE "id" = '"'4'"';'
	assert_line 'COMMIT;'
	printf '%s\n' "$output" > "$W/dry.sql"
	run -0 ledger
	assert_output 0
	run -0 tp_psql "$DST" "SELECT count(*) FROM public.t"
	assert_output 0
	[ -f "$INBOX/$(seqname 1)" ]
	# the printed script, run by psql, does what tp-apply would do
	tp_psql "$DST" < "$W/dry.sql"
	same public.t id
	run -0 ledger
	assert_output 0
}

@test "a tampered batch: exit 65, quarantined, nothing applied; a good copy then applies" {
	both "CREATE TABLE public.t (id int PRIMARY KEY)"
	install
	tp_psql "$SRC" "INSERT INTO public.t SELECT generate_series(1, 100)"
	tp-batch -c "$W/src.ini"
	mkdir -p "$INBOX"
	craft flip "$OUTBOX/$(seqname 1)" "$INBOX/$(seqname 1 .tar)"
	run -65 tp-apply -c "$W/dst.ini"
	assert_output --partial "bad batch"
	assert_output --partial "quarantine"
	[ ! -e "$INBOX/$(seqname 1 .tar)" ]
	ls "$W/dspool/quarantine/"*"$(seqname 1 .tar)"
	ls "$W/dspool/quarantine/"*"$(seqname 1 .tar).why"
	run -0 tp_psql "$DST" "SELECT count(*) FROM public.t"
	assert_output 0
	run -0 ledger
	assert_output 0
	# signed with another token: refused the same way
	craft forge "$OUTBOX/$(seqname 1)" "$INBOX/$(seqname 1 .tar)" wrong-token
	run -65 tp-apply -c "$W/dst.ini"
	assert_output --partial "bad batch"
	run -0 tp_psql "$DST" "SELECT count(*) FROM public.t"
	assert_output 0
	cp "$OUTBOX/$(seqname 1)" "$INBOX/"
	run -0 tp-apply -c "$W/dst.ini"
	same public.t id
}

@test "a batch again under an applied number: the same one goes quietly, another is a conflict (65)" {
	both "CREATE TABLE public.t (id int PRIMARY KEY)"
	install
	tp_psql "$SRC" "INSERT INTO public.t VALUES (1)"
	tp-batch -c "$W/src.ini"
	cp "$OUTBOX/$(seqname 1)" "$W/b1"
	ship
	run -0 tp-apply -c "$W/dst.ini"
	# another batch 1 from the same source: a second database posing as it
	tp_createdb "${SRC}_twin"
	tp_psql "${SRC}_twin" "CREATE TABLE public.t (id int PRIMARY KEY)"
	sed -e "s/dbname=$SRC /dbname=${SRC}_twin /" -e "s|/sspool|/twin|" "$W/src.ini" > "$W/twin.ini"
	tp-install -c "$W/twin.ini"
	tp_psql "${SRC}_twin" "INSERT INTO public.t VALUES (666)"
	tp-batch -c "$W/twin.ini"
	tp_psql "$SRC" "INSERT INTO public.t VALUES (2)"
	ship
	cp "$W/twin/outbox/replica/$(seqname 1)" "$INBOX/"
	run -65 tp-apply -c "$W/dst.ini"
	assert_output --partial "batch src/1 conflicts with the batch applied under that number"
	ls "$W/dspool/quarantine/"*"$(seqname 1)"
	# the stream went on past it, and the applied copy is untouched
	same public.t id
	run -0 ledger
	assert_output 2
	cmp "$W/b1" "$INBOX/applied/$(seqname 1)"
	# the same batch 1 again: moved quietly
	cp "$W/b1" "$INBOX/"
	run -0 tp-apply -c "$W/dst.ini"
	assert_output ""
	[ ! -e "$INBOX/$(seqname 1)" ]
}

@test "a damaged value that fails in SQL before the digest check: still 65 and quarantined" {
	both "CREATE TABLE public.t (id int PRIMARY KEY, v int)"
	install
	# more rows than the reader's first chunk: the bad value comes first
	tp_psql "$SRC" "BEGIN; INSERT INTO public.t VALUES (1, 5); UPDATE public.t SET v = 6;
		INSERT INTO public.t SELECT g, 0 FROM generate_series(2, 100000) g; COMMIT"
	tp-batch -c "$W/src.ini"
	local d=$W/unpacked
	mkdir -p "$d" "$INBOX"
	zstd -qdc "$OUTBOX/$(seqname 1)" | tar -xf - -C "$d"
	sed -i 's/^U\t1\t1\t1\t6$/U\t1\t1\t1\tX/' "$d/events-000001.tsv"
	grep -q X "$d/events-000001.tsv"
	tar -cf "$INBOX/$(seqname 1 .tar)" -C "$d" header.json events-000001.tsv manifest.json manifest.sig
	run -65 tp-apply -c "$W/dst.ini"
	assert_line --partial "22P02"
	assert_line --partial "bad batch"
	[ ! -e "$INBOX/$(seqname 1 .tar)" ]
	run -0 ledger
	assert_output 0
}

@test "a batch for another node or source is refused" {
	both "CREATE TABLE public.t (id int PRIMARY KEY)"
	install
	tp_psql "$SRC" "INSERT INTO public.t VALUES (1)"
	tp-batch -c "$W/src.ini"
	mkdir -p "$W/dspool/inbox/other"
	cp "$OUTBOX/$(seqname 1)" "$W/dspool/inbox/other/"
	printf '[source other]\n' >> "$W/dst.ini"
	tp-install -c "$W/dst.ini"
	run -65 tp-apply -c "$W/dst.ini" --source other
	assert_output --partial 'it comes from "src", not "other"'
	sed -i 's/^name = replica/name = elsewhere/' "$W/dst.ini"
	run -65 tp-apply -c "$W/dst.ini" "$OUTBOX/$(seqname 1)"
	assert_output --partial 'it is for "replica", not for this node "elsewhere"'
}

@test "no bookkeeping installed: exit 78 with a hint; unknown --source: 64" {
	run -78 tp-apply -c "$W/dst.ini"
	assert_output --partial "tp-install"
	run -64 tp-apply -c "$W/dst.ini" --source nosuch
}

@test "a second run while one holds the lock exits 75 at once" {
	both "CREATE TABLE public.t (id int PRIMARY KEY)"
	install
	mkdir -p "$W/dspool/lock"
	run -75 flock "$W/dspool/lock/tp-apply.lock" tp-apply -c "$W/dst.ini"
}

# A batch that takes the target a while: one transaction updating N rows.
big_batch() {
	both "CREATE TABLE public.t (id int PRIMARY KEY, v int, pad text)"
	install
	tp_psql "$SRC" "INSERT INTO public.t SELECT g, 0, repeat('x', 50) FROM generate_series(1, $1) g"
	ship
	tp-apply -c "$W/dst.ini"
	tp_psql "$SRC" "UPDATE public.t SET v = v + 1"
	ship
}

# wait until tp-apply is inside its transaction on the target
wait_applying() {
	local i
	for i in $(seq 1 300); do
		[[ $(tp_psql "$DST" "SELECT count(*) FROM pg_stat_activity
			WHERE application_name = 'tp-apply' AND xact_start IS NOT NULL
			AND query NOT LIKE '%teleport%'") != 0 ]] && return 0
		sleep 0.02
	done
	return 1
}

@test "kill -9 mid-batch, then a re-run: the batch is applied exactly once" {
	big_batch 200000
	tp-apply -c "$W/dst.ini" 3>&- &
	BG=$!
	wait_applying
	kill -9 "$BG"
	wait "$BG" || true
	BG=
	run -0 ledger
	assert_output 1
	[ -f "$INBOX/$(seqname 2)" ]
	run -0 tp-apply -c "$W/dst.ini"
	run -0 ledger
	assert_output 2
	same public.t id
	run -0 tp_psql "$DST" "SELECT count(*), min(v), max(v) FROM public.t"
	assert_output "200000|1|1"
	run -0 tp_psql "$DST" "SELECT count(*) FROM teleport.apply_log"
	assert_output 2
}

@test "kill -9 at random points over many batches: every batch exactly once" {
	both "CREATE TABLE public.t (id int PRIMARY KEY, v int)"
	install
	tp_psql "$SRC" "INSERT INTO public.t SELECT g, 0 FROM generate_series(1, 20000) g"
	for i in 1 2 3 4 5 6; do
		tp_psql "$SRC" "UPDATE public.t SET v = v + 1 WHERE id % $i = 0"
	done
	ship
	local k
	for k in 1 2 3 4 5 6 7 8 9 10; do
		tp-apply -c "$W/dst.ini" 3>&- &
		BG=$!
		sleep "0.$((RANDOM % 4))$((RANDOM % 10))"
		kill -9 "$BG" 2>/dev/null || true
		wait "$BG" || true
		BG=
	done
	run -0 tp-apply -c "$W/dst.ini"
	same public.t id
	run -0 tp_psql "$DST" "SELECT count(*), max(seq) FROM teleport.apply_log"
	assert_output "$(tp_psql "$SRC" "SELECT count(*) || '|' || max(seq) FROM teleport.batch")"
	run -0 ledger
	assert_output "$(tp_psql "$SRC" "SELECT max(seq) FROM teleport.batch")"
}

@test "SIGTERM mid-batch: rolled back, exit 75; the next run applies it" {
	big_batch 200000
	tp-apply -c "$W/dst.ini" 3>&- &
	BG=$!
	wait_applying
	kill -TERM "$BG"
	local rc=0
	wait "$BG" || rc=$?
	BG=
	assert_equal "$rc" 75
	run -0 ledger
	assert_output 1
	run -0 tp_psql "$DST" "SELECT max(v) FROM public.t"
	assert_output 0
	run -0 tp-apply -c "$W/dst.ini"
	same public.t id
}

@test "SIGTERM while a statement waits for a lock: canceled, exit 75 at once; the next run applies" {
	both "CREATE TABLE public.t (id int PRIMARY KEY, v int)"
	install
	tp_psql "$SRC" "INSERT INTO public.t SELECT generate_series(1, 10), 0"
	ship
	# someone holds the table on the target for a long while
	tp_psql "$DST" "BEGIN; LOCK TABLE public.t IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(600); COMMIT" 3>&- &
	local locker=$! i
	for ((i = 0; i < 600; i++)); do
		[[ $(tp_psql_admin "$DST" "SELECT count(*) FROM pg_locks
			WHERE relation = 'public.t'::regclass AND mode = 'AccessExclusiveLock' AND granted") == 1 ]] && break
		sleep 0.05
	done
	tp-apply -c "$W/dst.ini" 3>&- 2> "$W/apply.err" &
	BG=$!
	for ((i = 0; i < 600; i++)); do
		[[ $(tp_psql_admin "$DST" "SELECT count(*) FROM pg_stat_activity
			WHERE application_name = 'tp-apply' AND wait_event_type = 'Lock'") == 1 ]] && break
		sleep 0.05
	done
	kill -TERM "$BG"
	local rc=0
	wait "$BG" || rc=$?
	BG=
	assert_equal "$rc" 75
	# it did not wait for the lock holder, who is still there
	kill -0 "$locker"
	run -0 cat "$W/apply.err"
	assert_output --partial "57014"
	run -0 ledger
	assert_output 0
	kill "$locker"
	wait "$locker" || true
	tp_psql_admin "$DST" "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE query LIKE '%pg_sleep(600)%' AND pid <> pg_backend_pid()" > /dev/null
	run -0 tp-apply -c "$W/dst.ini"
	same public.t id
}

@test "applied rows are not captured again on a node that is also a source" {
	both "CREATE TABLE public.t (id int PRIMARY KEY, v text)"
	printf '[target back]\ntables = public.*\nendpoint = dir:%s/back\n' "$W" >> "$W/dst.ini"
	install
	tp_psql "$SRC" "INSERT INTO public.t VALUES (1, 'a'), (2, 'b')" "UPDATE public.t SET v = 'c'"
	ship
	run -0 tp-apply -c "$W/dst.ini"
	same public.t id
	run -0 tp_psql "$DST" "SELECT count(*) FROM teleport.event"
	assert_output 0
	# the target's own writes are still captured
	tp_psql "$DST" "INSERT INTO public.t VALUES (3, 'local')"
	run -0 tp_psql "$DST" "SELECT count(*) FROM teleport.event"
	assert_output 1
}
