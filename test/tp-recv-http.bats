#!/usr/bin/env bats
# tp-recv over HTTP: --listen (also with a socket from systemd socket
# activation), --inetd (under socat and systemd-socket-activate) and --cgi
# (under lighttpd). A batch is answered 2xx only once durable in the inbox;
# hostile requests are refused with the right status before anything
# reaches the inbox, and the receiver goes on serving.

load helper
load drop_helper
load http_helper

setup_file() {
	tp_cluster_start
	drop_setup_file
}

teardown_file() {
	tp_cluster_stop
}

setup() {
	http_setup
}

teardown() {
	http_teardown
}

# send_all URL: tp-send every good batch to URL; they must all land.
send_all() {
	http_sender "$1"
	queue "$W/good"
	run -0 tp-send -c "$SEND_INI"
	run -0 ls_names "$INBOX"
	assert_output "$(ls_names "$W/good")"
	for i in 1 2 3; do
		cmp "$W/good/$(seqname $i)" "$INBOX/$(seqname $i)"
	done
	run -0 no_tmp_left
}

# ---- the ways in ----

@test "--inetd under socat: batches land" {
	local port
	port=$(free_port)
	bg socat "TCP-LISTEN:$port,bind=127.0.0.1,reuseaddr,fork" \
		EXEC:"$TP_BIN/tp-recv --inetd --timeout 5 -c $RECV_INI" 2>>"$RECV_LOG"
	wait_for port_open "$port"
	send_all "http://127.0.0.1:$port/"
}

@test "--inetd under systemd-socket-activate --inetd: batches land" {
	command -v systemd-socket-activate >/dev/null || skip "no systemd-socket-activate"
	local port
	port=$(free_port)
	bg systemd-socket-activate --inetd -a -l "127.0.0.1:$port" \
		"$TP_BIN/tp-recv" --inetd --timeout 5 -c "$RECV_INI" 2>>"$RECV_LOG"
	wait_for port_open "$port"
	send_all "http://127.0.0.1:$port/"
}

@test "--listen with a socket from systemd socket activation" {
	command -v systemd-socket-activate >/dev/null || skip "no systemd-socket-activate"
	local port
	port=$(free_port)
	bg systemd-socket-activate -l "127.0.0.1:$port" \
		"$TP_BIN/tp-recv" -v --listen 127.0.0.1:1 --idle-timeout 60 \
		-c "$RECV_INI" 2>>"$RECV_LOG"
	wait_for port_open "$port"
	send_all "http://127.0.0.1:$port/"
	run -0 grep "listening on" "$RECV_LOG"
	assert_output "tp-recv: info: listening on 127.0.0.1:$port (socket activation)"
}

@test "--cgi under lighttpd: batches land; 401 and 413 as with --listen" {
	mkdir "$T/www"
	cgi_wrapper "$T/www/tp-recv.cgi"
	lighttpd_start "$T/www"
	URL=http://127.0.0.1:$PORT/tp-recv.cgi
	run -0 post "$W/good/$(seqname 1)" "$(route 1)" billing not-the-token
	assert_output "401 wrong credential for source billing (token mismatch?)"
	run -0 post "$W/big/$(seqname 1)" "$(route 1)"
	assert_output "201 stored"
	rm "$INBOX/$(seqname 1)"
	send_all "$URL/"
	run -0 curl -sS "$URL/v1/status"
	assert_output '{"node":"replica","sources":[]}'
	dst_ini "$RECV_INI" "$DST" "$W/token" "max_batch_bytes = 300"
	run -0 post "$W/good/$(seqname 1)" "$(route 4)"
	assert_output --regexp "^413 [0-9]+ bytes, larger than max_batch_bytes \(300\)$"
}

@test "--cgi outside a web server is a usage error" {
	run -64 env -u REQUEST_METHOD tp-recv --cgi -c "$RECV_INI"
	assert_output "tp-recv: error: --cgi: REQUEST_METHOD is not set: not run as a CGI program"
}

@test "--cgi reads exactly CONTENT_LENGTH bytes and answers with Status:" {
	run -0 bash -c "cat '$W/good/$(seqname 1)' /dev/zero | head -c \$((\$(stat -c %s '$W/good/$(seqname 1)') + 100)) |
		REQUEST_METHOD=POST PATH_INFO='$(route 1)' CONTENT_TYPE=application/x-teleport-batch \
		CONTENT_LENGTH=$(stat -c %s "$W/good/$(seqname 1)") REMOTE_ADDR=192.0.2.1 \
		tp-recv --cgi -c '$RECV_INI' 2>/dev/null"
	assert_line -n 0 $'Status: 401 Unauthorized\r'
	dst_ini "$RECV_INI" "$DST" ""
	run -0 bash -c "REQUEST_METHOD=POST PATH_INFO='$(route 1)' CONTENT_TYPE=application/x-teleport-batch \
		CONTENT_LENGTH=$(stat -c %s "$W/good/$(seqname 1)") tp-recv --cgi -c '$RECV_INI' < '$W/good/$(seqname 1)' 2>/dev/null"
	assert_line -n 0 $'Status: 201 Created\r'
	assert_line -n 3 "stored"
	cmp "$W/good/$(seqname 1)" "$INBOX/$(seqname 1)"
}

@test "--inetd refuses a standard input that is not a socket" {
	run -64 tp-recv --inetd -c "$RECV_INI" < /dev/null
	assert_output --partial "--inetd: standard input is not a socket"
}

@test "--max-requests N: the server stops after N answers, exit 0" {
	recv_listen --max-requests 2
	run -0 curl -sS "$URL/v1/status"
	run -0 curl -sS "$URL/nothing"
	local status=0
	wait "$RECV_PID" || status=$?
	assert_equal "$status" 0
	run -0 grep -c "served 2 requests, stopping" "$RECV_LOG"
}

@test "--idle-timeout: the server stops when idle, exit 0; SIGTERM likewise" {
	bg tp-recv -v -c "$RECV_INI" --listen 127.0.0.1:0 --idle-timeout 1 2>"$RECV_LOG"
	local status=0
	wait "$BG_PID" || status=$?
	assert_equal "$status" 0
	run -0 grep -c "idle for 1 s, stopping" "$RECV_LOG"
	recv_listen
	kill -TERM "$RECV_PID"
	status=0
	wait "$RECV_PID" || status=$?
	assert_equal "$status" 0
}

@test "one tp-recv per node: a second --listen exits 75" {
	recv_listen
	run -75 tp-recv -c "$RECV_INI" --listen 127.0.0.1:0
	assert_output --partial "another tp-recv is running"
}

@test "command line: one way in; listen-only options; HOST:PORT" {
	run -64 tp-recv -c "$RECV_INI"
	assert_output --partial "say where batches come from"
	run -64 tp-recv -c "$RECV_INI" --inetd --from "$DROP"
	assert_output --partial "say one way in"
	run -64 tp-recv -c "$RECV_INI" --inetd --idle-timeout 5
	assert_output --partial "--idle-timeout and --max-requests go with --listen"
	run -64 tp-recv -c "$RECV_INI" --listen nocolon
	assert_output --partial "--listen nocolon: want HOST:PORT"
	run -64 tp-recv -c "$RECV_INI" --listen 127.0.0.1:0 --timeout 0
	assert_output --partial "--timeout 0: not a positive duration"
	run -69 tp-recv -c "$RECV_INI" --listen 192.0.2.1:8089
	assert_output --partial "--listen 192.0.2.1:8089: cannot listen"
}

@test "GET /v1/status: a source with a token shows only to its own credential" {
	printf '\n[source open]\n' >> "$RECV_INI"
	mkdir -p "$INBOX/applied" "$DST/inbox/open"
	cp "$W/good/$(seqname 1)" "$W/good/$(seqname 2)" "$INBOX/applied/"
	cp "$W/good/$(seqname 3)" "$INBOX/"
	recv_listen
	run -0 curl -sS "$URL/v1/status"
	assert_output '{"node":"replica","sources":[{"name":"open","received":0,"applied":0}]}'
	mapfile -t hdr < <(auth_headers GET /v1/status billing the-shared-token)
	run -0 curl -sS "${hdr[@]}" "$URL/v1/status"
	assert_output '{"node":"replica","sources":[{"name":"billing","received":3,"applied":2},{"name":"open","received":0,"applied":0}]}'
	mapfile -t hdr < <(auth_headers GET /v1/status billing not-the-token)
	run -0 curl -sS -w ' %{http_code}' "${hdr[@]}" "$URL/v1/status"
	assert_output --partial " 401"
	run -0 curl -sS -o /dev/null -w '%{http_code}' -X POST "$URL/v1/status"
	assert_output 405
}

# ---- hostile requests ----

# refused STATUS TEXT: the last post answered STATUS with TEXT in its
# reason, and nothing reached the inbox.
refused() {
	assert_output --regexp "^$1 .*$2"
	run -0 inbox_files
	assert_output ""
}

@test "hostile requests: each refused with its status, nothing stored, still serving" {
	printf '\n[source sales]\ntoken_file = %s\n' "$W/wrong-token" >> "$RECV_INI"
	dst_ini_max=$((64 * 1024))
	sed -i "s/^\[node\]$/[node]\nmax_batch_bytes = $dst_ini_max/" "$RECV_INI"
	recv_listen --timeout 2
	local good=$W/good/$(seqname 1)

	# 1. no credential
	run -0 post "$good" "$(route 1)" -
	refused 401 "missing credential"
	# 2. a wrong token
	run -0 post "$good" "$(route 1)" billing not-the-token
	refused 401 "wrong credential for source billing"
	# 3. a stale date: the credential of long ago
	run -0 curl -sS -o "$T/body" -w '%{http_code}' -H "X-Teleport-Source: billing" \
		-H "X-Teleport-Date: 1000000000" -H "X-Teleport-Auth: $(printf '%064d' 0)" \
		-H "Content-Type: application/x-teleport-batch" --data-binary "@$good" "$URL$(route 1)"
	output="$output $(cat "$T/body")"
	refused 401 "off this receiver's clock"
	# 4. a valid credential replayed on another route
	mapfile -t hdr < <(auth_headers POST "$(route 2)" billing the-shared-token)
	run -0 curl -sS -o "$T/body" -w '%{http_code}' "${hdr[@]}" \
		-H "Content-Type: application/x-teleport-batch" --data-binary "@$good" "$URL$(route 1)"
	output="$output $(cat "$T/body")"
	refused 401 "wrong credential"
	# 5. an unknown source
	run -0 post "$good" "$(route 1 stranger)" stranger whatever
	refused 401 "unknown source stranger"
	# 6. another source's credential for billing's batch
	run -0 post "$good" "$(route 1)" sales not-the-token
	refused 403 "source sales may not send batches of source billing"
	# 7. billing's batch under sales's name, signed as sales
	run -0 post "$good" "$(route 1 sales)" sales not-the-token
	refused 422 "signature does not match"
	# 8. a truncated batch
	head -c 300 "$good" > "$T/trunc"
	run -0 post "$T/trunc" "$(route 1)"
	refused 422 ""
	# 9. garbage
	head -c 5000 /dev/urandom > "$T/garbage"
	run -0 post "$T/garbage" "$(route 1)"
	refused 422 ""
	# 10. a tar with a ../x member, alone and after a real batch
	craft dotdot "$T/dotdot.tar"
	run -0 post "$T/dotdot.tar" "$(route 1 billing .tar)"
	refused 422 ""
	craft dotdot "$W/good/$(seqname 2)" "$T/dotdot2.tar"
	run -0 post "$T/dotdot2.tar" "$(route 2 billing .tar)"
	refused 422 ""
	# 11. a batch signed with another token
	craft forge "$good" "$T/forged.tar" not-the-token
	run -0 post "$T/forged.tar" "$(route 1 billing .tar)"
	refused 422 "signature"
	# 12. unsigned while a token is configured
	craft unsigned "$good" "$T/unsigned.tar"
	run -0 post "$T/unsigned.tar" "$(route 1 billing .tar)"
	refused 422 "not signed"
	# 13. one flipped byte
	craft flip "$good" "$T/flipped.tar"
	run -0 post "$T/flipped.tar" "$(route 1 billing .tar)"
	refused 422 "sha256 mismatch"
	# 14. larger than max_batch_bytes, with and without Content-Length
	run -0 post "$W/big/$(seqname 1)" "$(route 1)"
	refused 413 "larger than max_batch_bytes \($dst_ini_max\)"
	# chunked: no answer can interrupt the body, the connection is cut
	run post "$W/big/$(seqname 1)" "$(route 1)" billing the-shared-token \
		-H "Transfer-Encoding: chunked"
	assert_line --regexp "^000"
	run -0 inbox_files
	assert_output ""
	# 15. not our media type (curl's default form encoding), no type
	CT=application/x-www-form-urlencoded run -0 post "$good" "$(route 1)"
	refused 415 "Content-Type must be application/x-teleport-batch"
	CT= run -0 post "$good" "$(route 1)"
	refused 415 "Content-Type"
	# 16. an unknown extension, a wrong method, an unknown route
	run -0 post "$good" "/v1/batches/billing/0000000000000001.zip"
	refused 415 "not a batch file extension"
	run -0 curl -sS -o /dev/null -w '%{http_code}' "$URL$(route 1)"
	assert_output 405
	run -0 post "$good" "/v1/batches/billing/../../etc/passwd"
	refused 404 ""
	run -0 post "$good" "/v1/batches/billing/0000000000000000.tar.zst"
	refused 404 ""

	# still serving: the good batches come in
	run -0 no_tmp_left
	send_all "$URL/"
	[ ! -e "$DST/x" ] && [ ! -e "$DST/inbox/x" ]
	[ ! -d "$DST/inbox/sales" ] || [ -z "$(ls -A "$DST/inbox/sales")" ]
}

@test "slow loris: a stalled request is cut after --timeout; others are served meanwhile" {
	recv_listen --timeout 2
	exec 5<>"/dev/tcp/127.0.0.1/$PORT"
	printf 'POST %s HTTP/1.1\r\nHost: x\r\nX-Teleport-' "$(route 1)" >&5
	# served while the stalled one hangs
	send_all "$URL/"
	# the server closes the stalled connection: read sees EOF, not our timeout
	local status=0 line=
	read -r -t 20 line <&5 || status=$?
	exec 5>&-
	assert_equal "$status" 1
	assert_equal "$line" ""
}

@test "an upload cut off midway: nothing stored, no temp file left" {
	recv_listen
	local big=$W/big/$(seqname 1) size
	size=$(stat -c %s "$big")
	mapfile -t hdr < <(auth_headers POST "$(route 1)" billing the-shared-token)
	exec 5<>"/dev/tcp/127.0.0.1/$PORT"
	{
		printf 'POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-teleport-batch\r\n' "$(route 1)"
		printf '%s\r\n' "${hdr[1]}" "${hdr[3]}" "${hdr[5]}"
		printf 'Content-Length: %s\r\n\r\n' "$size"
		head -c $((size / 2)) "$big"
	} >&5
	wait_for tmp_growing
	exec 5>&-
	wait_for grep -q "cut off before its end" "$RECV_LOG"
	run -0 inbox_files
	assert_output ""
	run -0 no_tmp_left
	# and the whole batch afterwards is fine
	run -0 post "$big" "$(route 1)"
	assert_output "201 stored"
	cmp "$big" "$INBOX/$(seqname 1)"
}

# ---- end to end ----

@test "end to end over HTTP: tp-batch, tp-send, tp-recv --listen, tp-apply" {
	command -v tp-apply >/dev/null || skip "no tp-apply"
	local s=http_e2e_src_$$ d=http_e2e_dst_$$ i
	tp_createdb "$s"
	tp_createdb "$d"
	for db in "$s" "$d"; do
		tp_psql "$db" "CREATE TABLE public.t (id int PRIMARY KEY, v text, n numeric, b bytea)"
	done
	recv_listen
	SRC_DB=$s src_ini "$SEND_INI" "$SRC" "$URL/"
	sed -i "s|^conninfo = .*|conninfo = $(tp_conninfo "$d")|" "$RECV_INI"
	tp-install -c "$SEND_INI"
	tp-install -c "$RECV_INI"
	for i in 1 2 3; do
		tp_psql "$s" "INSERT INTO public.t SELECT g, 'row ' || g || E'\\t\\n', g / 7.0, '\\x00ff'::bytea
			FROM generate_series($i * 100, $i * 100 + 49) g" \
			"UPDATE public.t SET v = NULL WHERE id % 10 = 0" \
			"DELETE FROM public.t WHERE id % 13 = 0"
		tp-batch -c "$SEND_INI"
		run -0 tp-send -c "$SEND_INI"
	done
	run -0 tp-apply -c "$RECV_INI"
	local q="SELECT count(*) || ':' || md5(string_agg(t::text, ',' ORDER BY id)) FROM public.t"
	assert_equal "$(tp_psql "$d" "$q")" "$(tp_psql "$s" "$q")"
	assert_equal "$(tp_psql "$d" "SELECT count(*) FROM public.t")" 139
	mapfile -t hdr < <(auth_headers GET /v1/status billing the-shared-token)
	run -0 curl -sS "${hdr[@]}" "$URL/v1/status"
	assert_output '{"node":"replica","sources":[{"name":"billing","received":3,"applied":3}]}'
}
