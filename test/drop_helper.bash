# drop_helper.bash - shared by tp-send.bats and tp-recv.bats: real batches
# made once per suite by tp-install + tp-batch, a sender and a receiver node
# per test, and hostile variants of batches crafted with tar and openssl.
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

# Hostile variants of a batch, made with GNU tar, zstd and openssl only.
# Each keeps every other byte and the member order, so that only the
# intended flaw is there. OUT is always an uncompressed tar.
#   craft unsigned IN OUT      without manifest.sig
#   craft forge IN OUT KEY     manifest.sig replaced by an HMAC made with KEY
#   craft flip IN OUT          one byte of the first events member flipped
#   craft dotdot [IN] OUT      a tar whose only member is "../x", or IN
#                              with a "../x" member appended
#   craft tarstream OUT F...   a tar stream of files F under their base names
craft() {
	local mode=$1
	shift
	"_craft_$mode" "$@"
}

_plain_tar() {
	case $1 in
	*.zst) zstd -qdc "$1" > "$2" ;;
	*.gz) gzip -dc "$1" > "$2" ;;
	*) cp "$1" "$2" ;;
	esac
}

_craft_unsigned() {
	_plain_tar "$1" "$2"
	tar --delete -f "$2" manifest.sig
}

_craft_forge() {
	local d sig
	d=$(mktemp -d)
	_plain_tar "$1" "$2"
	tar -xf "$2" -C "$d" manifest.json
	sig=$(openssl dgst -sha256 -hmac "$3" -r "$d/manifest.json" | cut -d' ' -f1)
	printf '%s\n' "$sig" > "$d/manifest.sig"
	tar --delete -f "$2" manifest.sig
	tar -rf "$2" -C "$d" --owner=0 --group=0 --numeric-owner manifest.sig
	rm -rf "$d"
}

_craft_flip() {
	local block off byte
	_plain_tar "$1" "$2"
	# tar -R gives each member's header block; its data follows.
	block=$(tar -tvRf "$2" | awk '/ events-/ { sub(":", "", $2); print $2; exit }')
	off=$(( (block + 1) * 512 + 10 ))
	byte=$(od -An -tu1 -j "$off" -N1 "$2" | tr -d ' ')
	printf "\\$(printf '%03o' $((byte ^ 1)))" |
		dd of="$2" bs=1 seek="$off" conv=notrunc status=none
}

_craft_dotdot() {
	local d out=${2:-$1}
	d=$(mktemp -d)
	printf 'escaped\n' > "$d/x"
	if [ $# -eq 2 ]; then          # a real batch with "../x" appended
		_plain_tar "$1" "$out"
		tar -P --transform 's,^x$,../x,' -C "$d" -rf "$out" x
	else
		tar -P --transform 's,^x$,../x,' -C "$d" -cf "$out" x
	fi
	rm -rf "$d"
}

_craft_tarstream() {
	local out=$1 f args=()
	shift
	for f in "$@"; do args+=(-C "$(dirname "$f")" "$(basename "$f")"); done
	tar -cf "$out" "${args[@]}"
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
