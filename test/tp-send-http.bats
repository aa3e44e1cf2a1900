#!/usr/bin/env bats
# tp-send to http:// and https:// endpoints, against tp-recv --listen on
# loopback: a batch counts as sent only once the receiver answered 2xx
# (durable in its inbox); transient failures are retried, then exit 69;
# a bad batch is 65, a wrong credential 78; TLS is verified.

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

@test "every batch reaches the inbox byte for byte, then moves to sent/" {
	recv_listen
	http_sender "$URL/"
	queue "$W/good"
	run -0 tp-send -c "$SEND_INI"
	assert_output ""
	run -0 ls_names "$INBOX"
	assert_output "$(ls_names "$W/good")"
	for i in 1 2 3; do
		cmp "$W/good/$(seqname $i)" "$INBOX/$(seqname $i)"
	done
	run -0 ls_names "$OUTBOX/sent"
	assert_output "$(ls_names "$W/good")"
	run -0 no_tmp_left
	run -0 grep -c 'received batch' "$RECV_LOG"
	assert_output 3
}

@test "-v logs each batch sent; the receiver's status shows them" {
	recv_listen
	http_sender "$URL"
	queue "$W/good"
	run -0 tp-send -v -c "$SEND_INI"
	assert_line -n 0 "tp-send: info: target replica: sent batch 0000000000000001.tar.zst"
	assert_line -n 2 "tp-send: info: target replica: sent batch 0000000000000003.tar.zst"
	mkdir "$INBOX/applied" && mv "$INBOX/$(seqname 1)" "$INBOX/applied/"
	mapfile -t hdr < <(auth_headers GET /v1/status billing the-shared-token)
	run -0 curl -sS "${hdr[@]}" "$URL/v1/status"
	assert_output '{"node":"replica","sources":[{"name":"billing","received":3,"applied":1}]}'
}

@test "a batch the receiver already holds counts as sent" {
	recv_listen
	http_sender "$URL/"
	queue "$W/good"
	mkdir -p "$INBOX/applied"
	cp "$W/good/$(seqname 1)" "$INBOX/applied/"
	cp "$W/good/$(seqname 2)" "$INBOX/"
	run -0 tp-send -c "$SEND_INI"
	run -0 ls_names "$OUTBOX/sent"
	assert_output "$(ls_names "$W/good")"
	run -0 inbox_files
	assert_output "$INBOX/0000000000000002.tar.zst
$INBOX/0000000000000003.tar.zst
$INBOX/applied/0000000000000001.tar.zst"
}

@test "a wrong token: 401, exit 78 with a hint, nothing stored, batch kept" {
	recv_listen
	http_sender "$URL/"
	sed -i "s|^token_file = .*|token_file = $W/wrong-token|" "$SEND_INI"
	queue "$W/good"
	run -78 tp-send -c "$SEND_INI"
	assert_line -n 0 "tp-send: error: target replica: batch 0000000000000001.tar.zst refused by $URL/v1/batches/billing/0000000000000001.tar.zst: 401 wrong credential for source billing (token mismatch?)"
	assert_line -n 1 --partial "hint: the token_file of [target replica]"
	run -0 inbox_files
	assert_output ""
	run -0 no_tmp_left
	run -0 ls_names "$OUTBOX/sent"
	assert_output ""
}

@test "no token on the sender while the receiver wants one: 401, exit 78" {
	recv_listen
	http_sender "$URL/"
	sed -i '/^token_file/d' "$SEND_INI"
	queue "$W/good" 1
	run -78 tp-send -c "$SEND_INI"
	assert_output --partial "401 missing credential"
	run -0 inbox_files
	assert_output ""
}

@test "a source without token_file takes requests without a credential" {
	dst_ini "$RECV_INI" "$DST" ""
	recv_listen
	http_sender "$URL/"
	sed -i '/^token_file/d' "$SEND_INI"
	queue "$W/good"
	run -0 tp-send -c "$SEND_INI"
	run -0 ls_names "$INBOX"
	assert_output "$(ls_names "$W/good")"
}

@test "an unreadable token_file on the sender is exit 78, before any request" {
	http_sender "http://127.0.0.1:1/"
	sed -i "s|^token_file = .*|token_file = $T/nosuch|" "$SEND_INI"
	queue "$W/good" 1
	run -78 tp-send -c "$SEND_INI"
	assert_output --partial "target replica: token_file $T/nosuch: cannot open"
}

@test "receiver down: retried, exit 69 naming the URL; the next run sends" {
	local port
	port=$(free_port)
	http_sender "http://127.0.0.1:$port/" "retries = 2"
	queue "$W/good"
	run -69 tp-send -v -c "$SEND_INI"
	assert_line -n 0 --regexp "^tp-send: info: target replica: batch 0000000000000001.tar.zst: .*Couldn't connect to server; retry 1 of 2 in 0 s$"
	assert_line -n 1 --partial "retry 2 of 2 in 0 s"
	assert_line -n 2 --regexp "^tp-send: error: target replica: batch 0000000000000001.tar.zst: http://127.0.0.1:$port/v1/batches/billing/0000000000000001.tar.zst: .*\(gave up after 3 attempts\)$"
	assert_equal "${#lines[@]}" 3
	run -0 ls_names "$OUTBOX/sent"
	assert_output ""
	# now the receiver is there
	: > "$RECV_LOG"
	bg tp-recv -c "$RECV_INI" --listen "127.0.0.1:$port" --idle-timeout 60 2>>"$RECV_LOG"
	wait_for port_open "$port"
	run -0 tp-send -c "$SEND_INI"
	run -0 ls_names "$INBOX"
	assert_output "$(ls_names "$W/good")"
}

@test "503 and 429 are retried, honouring Retry-After, then exit 69" {
	local port
	port=$(free_port)
	printf 'HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Length: 11\r\nConnection: close\r\n\r\ntoo busy\r\n\n' > "$T/resp"
	bg socat "TCP-LISTEN:$port,bind=127.0.0.1,reuseaddr,fork" \
		SYSTEM:"echo hit >> '$T/hits'; cat '$T/resp'; cat > /dev/null"
	wait_for port_open "$port"
	http_sender "http://127.0.0.1:$port/" "retries = 1"
	queue "$W/good" 1
	run -69 tp-send -v -c "$SEND_INI"
	assert_line -n 0 "tp-send: info: target replica: batch 0000000000000001.tar.zst: 503 too busy; retry 1 of 1 in 1 s"
	assert_line -n 1 "tp-send: error: target replica: batch 0000000000000001.tar.zst: http://127.0.0.1:$port/v1/batches/billing/0000000000000001.tar.zst: 503 too busy (gave up after 2 attempts)"
	run -0 wc -l < "$T/hits"
	assert_output 3     # the port probe, then two attempts
	[ -e "$OUTBOX/$(seqname 1)" ]
	printf 'HTTP/1.1 429 Too Many Requests\r\nRetry-After: 2\r\nContent-Length: 5\r\nConnection: close\r\n\r\nslow\n' > "$T/resp"
	run -69 tp-send -v -c "$SEND_INI"
	assert_line -n 0 --partial "429 slow; retry 1 of 1 in 2 s"
	assert_line -n 1 --partial "429 slow (gave up after 2 attempts)"
}

@test "SIGTERM while waiting to retry: exit 75, batch kept" {
	local port
	port=$(free_port)
	http_sender "http://127.0.0.1:$port/" "retries = 5" "retry_delay = 30"
	queue "$W/good" 1
	tp-send -v -c "$SEND_INI" 2> "$T/send.log" 3>&- &
	local pid=$!
	wait_for grep -q 'retry 1 of 5' "$T/send.log"
	kill -TERM "$pid"
	local status=0
	wait "$pid" || status=$?
	assert_equal "$status" 75
	[ -e "$OUTBOX/$(seqname 1)" ]
}

@test "larger than the receiver's max_batch_bytes: 413, exit 65, nothing stored" {
	dst_ini "$RECV_INI" "$DST" "$W/token" "max_batch_bytes = 200"
	recv_listen
	http_sender "$URL/"
	queue "$W/good" 1
	run -65 tp-send -c "$SEND_INI"
	assert_output --regexp "refused by .*: 413 [0-9]+ bytes, larger than max_batch_bytes \(200\)$"
	run -0 inbox_files
	assert_output ""
	run -0 no_tmp_left
}

@test "a bad batch is refused with 422 and the receiver's reason: exit 65" {
	recv_listen
	http_sender "$URL/"
	cp "$W/other/$(seqname 1)" "$OUTBOX/"
	run -65 tp-send -c "$SEND_INI"
	assert_output "tp-send: error: target replica: batch 0000000000000001.tar.zst refused by $URL/v1/batches/billing/0000000000000001.tar.zst: 422 batch is for target other, not this node replica"
	assert_equal "$(grep -c 'refused POST' "$RECV_LOG")" 1
	run -0 inbox_files
	assert_output ""
}

@test "another batch under a number the receiver holds: 409, exit 65, queue stops" {
	recv_listen
	http_sender "$URL/"
	mkdir -p "$INBOX" && cp "$W/good/$(seqname 1)" "$INBOX/"
	cp "$W/big/$(seqname 1)" "$OUTBOX/"
	cp "$W/good/$(seqname 2)" "$OUTBOX/"
	run -65 tp-send -c "$SEND_INI"
	assert_output --partial ": 409 conflicts with batch already received"
	[ ! -e "$INBOX/$(seqname 2)" ]
	cmp "$W/good/$(seqname 1)" "$INBOX/$(seqname 1)"
}

@test "an endpoint that is no tp-recv route: 404, exit 78 with a hint" {
	recv_listen
	http_sender "$URL/not/here/"
	queue "$W/good" 1
	run -78 tp-send -c "$SEND_INI"
	assert_line -n 0 --partial "refused by $URL/not/here/v1/batches/billing/0000000000000001.tar.zst: 404 no such route"
	assert_line -n 1 "tp-send: hint: is endpoint = $URL/not/here/ a tp-recv?"
}

@test "credentials in the endpoint URL, or a query, are refused (78)" {
	http_sender "http://user:secret@127.0.0.1:1/"
	queue "$W/good" 1
	run -78 tp-send -c "$SEND_INI"
	assert_output --partial "user credentials in the URL are not supported"
	http_sender "http://127.0.0.1:1/?x=1"
	run -78 tp-send -c "$SEND_INI"
	assert_output --partial "without query or fragment"
}

@test "bad http keys in [target] are configuration errors" {
	http_sender "http://127.0.0.1:1/" "timeout = 0"
	run -78 tp-send -c "$SEND_INI"
	assert_output --regexp "send.ini:[0-9]+: timeout: \"0\" is not a positive duration"
	http_sender "http://127.0.0.1:1/" "retries = many"
	run -78 tp-send -c "$SEND_INI"
	assert_output --partial "retries: \"many\" is not a whole number from 0 to 100"
	http_sender "http://127.0.0.1:1/" "sslverify = off"
	run -78 tp-send -c "$SEND_INI"
	assert_output --partial "sslverify: unknown key in [target replica]"
}

@test "receiver killed mid-upload: nothing half-stored; the re-send lands" {
	recv_listen
	local big=$W/big/$(seqname 1)
	# a slow upload, so that the kill surely falls in its middle
	mapfile -t hdr < <(auth_headers POST "$(route 1)" billing the-shared-token)
	curl -sS -o /dev/null --limit-rate 50k "${hdr[@]}" \
		-H "Content-Type: application/x-teleport-batch" -H "Expect:" \
		--data-binary "@$big" "$URL$(route 1)" 2>/dev/null 3>&- &
	local curl_pid=$!
	wait_for tmp_growing
	kill -9 "$RECV_PID"
	wait "$curl_pid" || true
	run -0 inbox_files
	assert_output ""
	# restarted: the stale temp file goes, the batch comes in whole
	recv_listen
	http_sender "$URL/"
	cp "$big" "$OUTBOX/"
	run -0 tp-send -c "$SEND_INI"
	cmp "$big" "$INBOX/$(seqname 1)"
	run -0 no_tmp_left
}

# ---- TLS, terminated by socat in front of tp-recv --listen ----

tls_front() {
	make_ca ca
	make_ca otherca
	make_cert ca
	recv_listen
	TLS_PORT=$(free_port)
	bg socat "OPENSSL-LISTEN:$TLS_PORT,bind=127.0.0.1,reuseaddr,fork,cert=$T/server.pem,key=$T/server.key,verify=0" \
		"TCP:127.0.0.1:$PORT"
	wait_for port_open "$TLS_PORT"
}

@test "https: verified with the right ca_file, batches land" {
	tls_front
	http_sender "https://localhost:$TLS_PORT/" "ca_file = $T/ca.pem"
	queue "$W/good"
	run -0 tp-send -c "$SEND_INI"
	run -0 ls_names "$INBOX"
	assert_output "$(ls_names "$W/good")"
}

@test "https: a certificate from another CA is refused, exit 69 naming it" {
	tls_front
	http_sender "https://localhost:$TLS_PORT/" "ca_file = $T/otherca.pem"
	queue "$W/good" 1
	run -69 tp-send -c "$SEND_INI"
	assert_line -n 0 --regexp "^tp-send: error: target replica: batch 0000000000000001.tar.zst: https://localhost:$TLS_PORT/v1/batches/billing/0000000000000001.tar.zst: SSL certificate problem: .*"
	assert_line -n 1 "tp-send: hint: ca_file of [target replica] must hold the CA that signed the receiver's certificate"
	run -0 inbox_files
	assert_output ""
	# the system store does not know our CA either
	http_sender "https://localhost:$TLS_PORT/"
	run -69 tp-send -c "$SEND_INI"
	assert_output --partial "SSL certificate problem"
}

@test "https: client_cert and client_key for a receiver that asks for one" {
	tls_front
	openssl req -newkey rsa:2048 -nodes -subj /CN=billing \
		-keyout "$T/client.key" -out "$T/client.csr" 2>/dev/null
	openssl x509 -req -in "$T/client.csr" -CA "$T/ca.pem" -CAkey "$T/ca.key" \
		-CAcreateserial -days 2 -out "$T/client.pem" 2>/dev/null
	local port
	port=$(free_port)
	bg socat "OPENSSL-LISTEN:$port,bind=127.0.0.1,reuseaddr,fork,cert=$T/server.pem,key=$T/server.key,cafile=$T/ca.pem,verify=1" \
		"TCP:127.0.0.1:$PORT"
	wait_for port_open "$port"
	http_sender "https://localhost:$port/" "ca_file = $T/ca.pem" "retries = 0"
	queue "$W/good" 1
	run -69 tp-send -c "$SEND_INI"
	run -0 inbox_files
	assert_output ""
	http_sender "https://localhost:$port/" "ca_file = $T/ca.pem" \
		"client_cert = $T/client.pem" "client_key = $T/client.key"
	run -0 tp-send -c "$SEND_INI"
	cmp "$W/good/$(seqname 1)" "$INBOX/$(seqname 1)"
}
