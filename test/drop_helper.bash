# drop_helper.bash - shared by tp-send.bats and tp-recv.bats: real batches
# made once per suite by tp-install + tp-batch, a sender and a receiver node
# per test, and hostile variants of batches crafted with python3.
#
# After drop_setup_file (in setup_file):
#   $W/good/   0000000000000001..3.tar.zst  small signed batches, billing -> replica
#   $W/other/  0000000000000001.tar.zst     signed, but for target "other"
#   $W/big/    0000000000000001..N.tar.zst  ~1 MB batches for kill -9 loops
#   $W/token   the shared token
# After drop_setup (in setup):
#   $DROP      the shared folder; $SRC / $DST the nodes' spools
#   $SEND_INI  node billing, [target replica] endpoint = dir:$DROP
#   $RECV_INI  node replica, [source billing] token_file = $W/token

BIG_BATCHES=12

# src_ini FILE SPOOL ENDPOINT [extra [node] lines...]: a sender config
# (of database $SRC_DB, default $DROP_DB)
src_ini() {
	local file=$1 spool=$2 endpoint=$3
	shift 3
	{
		printf '[node]\nname = billing\nconninfo = %s\nspool = %s\n' \
			"$(tp_conninfo "${SRC_DB:-$DROP_DB}")" "$spool"
		local l
		for l in "$@"; do printf '%s\n' "$l"; done
		printf '\n[target replica]\ntables = public.*\nendpoint = %s\n' "$endpoint"
		printf 'token_file = %s\n' "$W/token"
	} > "$file"
}

# dst_ini FILE SPOOL TOKENFILE [extra [node] lines...]: a receiver config
dst_ini() {
	local file=$1 spool=$2 token=$3
	shift 3
	{
		printf '[node]\nname = replica\nconninfo = %s\nspool = %s\n' \
			"$(tp_conninfo "$DROP_DB")" "$spool"
		local l
		for l in "$@"; do printf '%s\n' "$l"; done
		printf '\n[source billing]\n'
		[ -z "$token" ] || printf 'token_file = %s\n' "$token"
	} > "$file"
}

# Insert one row per transaction and cut one batch after each.
_drop_batches() {
	local db=$1 cfg=$2 n=$3 payload=$4 i
	for ((i = 1; i <= n; i++)); do
		tp_psql "$db" "INSERT INTO public.t SELECT coalesce(max(id), 0) + 1, $payload FROM public.t"
		tp-batch -c "$cfg"
	done
}

drop_setup_file() {
	export W=$BATS_FILE_TMPDIR/w
	export DROP_DB=drop_${BATS_SUITE_TEST_NUMBER:-0}_$$
	mkdir -p "$W"
	printf 'the-shared-token\n' > "$W/token"
	printf 'not-the-token\n' > "$W/wrong-token"
	chmod 600 "$W/token" "$W/wrong-token"
	tp_createdb "$DROP_DB"
	tp_psql "$DROP_DB" "CREATE TABLE public.t (id int PRIMARY KEY, v text)"

	# Small batches, for replica and for a target "other".
	src_ini "$W/gen.ini" "$W/gen" "dir:$W/unused"
	printf '\n[target other]\ntables = public.*\nendpoint = dir:%s/unused\ntoken_file = %s\n' \
		"$W" "$W/token" >> "$W/gen.ini"
	tp-install -c "$W/gen.ini"
	_drop_batches "$DROP_DB" "$W/gen.ini" 3 "'row ' || (coalesce(max(id), 0) + 1)"
	cp -a "$W/gen/outbox/replica" "$W/good"
	mkdir "$W/other"
	cp "$W/gen/outbox/other/0000000000000001.tar.zst" "$W/other/"

	# Big batches, ~1 MB of barely compressible text each, from a second
	# database: numbered from 1 again, so they also serve as different
	# batches under numbers already used.
	tp_createdb "${DROP_DB}_big"
	tp_psql "${DROP_DB}_big" "CREATE TABLE public.t (id int PRIMARY KEY, v text)"
	SRC_DB=${DROP_DB}_big src_ini "$W/big.ini" "$W/genbig" "dir:$W/unused"
	tp-install -c "$W/big.ini"
	_drop_batches "${DROP_DB}_big" "$W/big.ini" "$BIG_BATCHES" \
		"(SELECT string_agg(md5(random()::text), '') FROM generate_series(1, 32000))"
	cp -a "$W/genbig/outbox/replica" "$W/big"
	rm -f "$W"/good/*.why "$W"/big/*.why
}

drop_setup() {
	T=$BATS_TEST_TMPDIR
	DROP=$T/drop
	SRC=$T/src
	DST=$T/dst
	SEND_INI=$T/send.ini
	RECV_INI=$T/recv.ini
	OUTBOX=$SRC/outbox/replica
	INBOX=$DST/inbox/billing
	mkdir -p "$DROP" "$OUTBOX"
	src_ini "$SEND_INI" "$SRC" "dir:$DROP"
	dst_ini "$RECV_INI" "$DST" "$W/token"
}

# queue DIR [SEQ...]: put batches of DIR into the sender's outbox
queue() {
	local from=$1 f
	shift
	if [ $# -eq 0 ]; then
		cp "$from"/*.tar* "$OUTBOX/"
	else
		for f in "$@"; do cp "$from/$(printf '%016d' "$f").tar.zst" "$OUTBOX/"; done
	fi
}

# drop_as NAME FILE: put FILE into the drop folder under NAME
drop_as() {
	cp "$2" "$DROP/$1"
}

# seqname N [EXT]: "000000000000000N.tar.zst"
seqname() {
	printf '%016d%s' "$1" "${2:-.tar.zst}"
}

# craft MODE IN OUT [KEY]: a hostile variant of batch IN (see craft.py)
craft() {
	python3 "$BATS_TEST_DIRNAME/craft.py" "$@"
}

# ls_names DIR: file names in DIR, one a line, sorted ("" when none)
ls_names() {
	ls -A "$1" 2>/dev/null | LC_ALL=C sort
}

# quarantined: how many files (not .why) are in the receiver's quarantine
quarantined() {
	ls -A "$DST/quarantine" 2>/dev/null | grep -vc '\.why$' || true
}

# kill_loop TRIES CMD...: run CMD in the background, SIGKILL it after a
# random 0..40 ms, TRIES times; then once more to the end.
kill_loop() {
	local tries=$1 i pid
	shift
	for ((i = 0; i < tries; i++)); do
		"$@" 3>&- 2>/dev/null &
		pid=$!
		sleep "0.0$((RANDOM % 40))"
		kill -9 "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	"$@"
}
