# http_helper.bash - shared by tp-send-http.bats and tp-recv-http.bats:
# receivers started in the background on loopback (tp-recv --listen, or
# behind socat, systemd-socket-activate and lighttpd), killed in teardown;
# requests made by hand with curl and the header credential.
#
# Load after helper and drop_helper; call http_setup in setup and
# http_teardown in teardown.

# No proxy from the environment may get between us and loopback.
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY ALL_PROXY all_proxy NO_PROXY no_proxy

http_setup() {
	drop_setup
	BG_PIDS=()
	RECV_LOG=$T/recv.log
}

http_teardown() {
	local p
	for p in "${BG_PIDS[@]}"; do
		kill "$p" 2>/dev/null || true
	done
	for p in "${BG_PIDS[@]}"; do
		wait "$p" 2>/dev/null || true
	done
	# Receivers ran in the background: their sanitizer reports are in
	# the log, not in any status a test saw.
	if grep -q 'Sanitizer' "$RECV_LOG" 2>/dev/null; then
		cat "$RECV_LOG" >&2
		return 1
	fi
}

# bg CMD...: start a daemon without bats' fd 3, remember it for teardown.
bg() {
	"$@" </dev/null 3>&- &
	BG_PIDS+=($!)
	BG_PID=$!
}

# wait_for CMD...: until CMD succeeds, for at most 15 s.
wait_for() {
	local i
	for ((i = 0; i < 150; i++)); do
		"$@" 2>/dev/null && return 0
		sleep 0.1
	done
	echo "wait_for: gave up on: $*" >&2
	return 1
}

# free_port: a loopback TCP port that nobody listens on right now.
free_port() {
	local p
	while :; do
		p=$((20000 + RANDOM % 40000))
		if ! (exec 9<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			echo "$p"
			return
		fi
	done
}

# port_open PORT: something listens on it.
port_open() {
	(exec 9<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# recv_listen [ARGS...]: tp-recv --listen on an ephemeral loopback port,
# with the receiver config; sets PORT, URL and RECV_PID.
recv_listen() {
	: > "$RECV_LOG"
	bg tp-recv -v -c "$RECV_INI" --listen 127.0.0.1:0 --idle-timeout 120 \
		--timeout 5 "$@" 2>>"$RECV_LOG"
	RECV_PID=$BG_PID
	wait_for grep -q 'listening on' "$RECV_LOG"
	PORT=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$RECV_LOG" | tail -1)
	URL=http://127.0.0.1:$PORT
}

# http_sender URL [target lines...]: the sender config, endpoint URL,
# fast retries; extra lines go into [target replica] (and replace the
# defaults of the same keys).
http_sender() {
	local url=$1 l d
	shift
	src_ini "$SEND_INI" "$SRC" "$url"
	for d in 'retries = 1' 'retry_delay = 0' 'connect_timeout = 5' 'timeout = 30'; do
		[[ " ${*%% *} " == *" ${d%% *} "* ]] || printf '%s\n' "$d" >> "$SEND_INI"
	done
	for l in "$@"; do printf '%s\n' "$l" >> "$SEND_INI"; done
}

# auth_headers METHOD ROUTE SOURCE TOKEN: curl -H arguments, one a line.
auth_headers() {
	local date mac
	date=$(date +%s)
	mac=$(printf '%s\n%s\n%s\n%s' "$1" "$2" "$3" "$date" |
		openssl dgst -sha256 -hmac "$4" -r | cut -d' ' -f1)
	printf '%s\n' -H "X-Teleport-Source: $3" -H "X-Teleport-Date: $date" \
		-H "X-Teleport-Auth: $mac"
}

# post FILE ROUTE [SOURCE [TOKEN [curl args...]]]: POST FILE to $URL ROUTE
# signed as SOURCE (default billing) with TOKEN (default the shared one);
# prints "STATUS BODY" ("000" when no answer came). A SOURCE of "-"
# sends no credential. $CT overrides the Content-Type.
post() {
	local file=$1 route=$2 source=${3:-billing} token=${4:-the-shared-token}
	local hdr=()
	shift $(($# < 4 ? $# : 4))
	[ "$source" = - ] || mapfile -t hdr < <(auth_headers POST "$route" "$source" "$token")
	rm -f "$T/body"
	curl -sS -o "$T/body" -w '%{http_code}' "${hdr[@]}" \
		-H "Content-Type: ${CT-application/x-teleport-batch}" -H "Expect:" \
		--data-binary "@$file" "$@" "$URL$route"
	printf ' %s' "$(head -1 "$T/body" 2>/dev/null)"
}

# route N [SOURCE [EXT]]: the route of batch N
route() {
	printf '/v1/batches/%s/%016d%s' "${2:-billing}" "$1" "${3:-.tar.zst}"
}

# Batch files anywhere below the receiver's inbox, and its temp files.
inbox_files() {
	[ ! -d "$DST/inbox" ] || find "$DST/inbox" -type f -name '0*' | sort
}
inbox_tmp() {
	[ ! -d "$DST/inbox" ] || find "$DST/inbox" -name '.tmp-*'
}

# tmp_growing: an upload's temp file is in the inbox and has data.
tmp_growing() {
	local f
	f=$(inbox_tmp | head -1)
	[ -n "$f" ] && [ -s "$f" ]
}

# no_tmp_left: no temp file of an upload remains in the inbox.
no_tmp_left() {
	[ -z "$(inbox_tmp)" ]
}

# cgi_wrapper FILE: a CGI script that runs tp-recv --cgi on $RECV_INI
# (the web server gives CGI programs a clean environment).
cgi_wrapper() {
	cat > "$1" <<SH
#!/bin/sh
ASAN_OPTIONS='${ASAN_OPTIONS:-}' UBSAN_OPTIONS='${UBSAN_OPTIONS:-}'
export ASAN_OPTIONS UBSAN_OPTIONS
exec '$TP_BIN/tp-recv' --cgi --timeout 5 -c '$RECV_INI' 2>>'$RECV_LOG'
SH
	chmod 755 "$1"
}

# lighttpd_start DOCROOT: lighttpd with mod_cgi on a free loopback port,
# executable files in DOCROOT run as CGI; sets PORT.
lighttpd_start() {
	local root=$1 conf=$T/lighttpd.conf
	PORT=$(free_port)
	cat > "$conf" <<CONF
server.modules = ("mod_cgi")
server.document-root = "$root"
server.bind = "127.0.0.1"
server.port = $PORT
server.errorlog = "$T/lighttpd.err"
server.max-request-size = 65536
cgi.assign = (".cgi" => "")
CONF
	bg lighttpd -D -f "$conf"
	wait_for port_open "$PORT"
}

# make_ca NAME: a CA in $T/NAME.{key,pem}; make_cert CA: a server
# certificate for 127.0.0.1 and localhost in $T/server.{key,pem}.
make_ca() {
	openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=$1" \
		-keyout "$T/$1.key" -out "$T/$1.pem" 2>/dev/null
}
make_cert() {
	openssl req -newkey rsa:2048 -nodes -subj /CN=localhost \
		-keyout "$T/server.key" -out "$T/server.csr" 2>/dev/null
	printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' > "$T/san.ext"
	openssl x509 -req -in "$T/server.csr" -CA "$T/$1.pem" -CAkey "$T/$1.key" \
		-CAcreateserial -days 2 -extfile "$T/san.ext" -out "$T/server.pem" 2>/dev/null
}
