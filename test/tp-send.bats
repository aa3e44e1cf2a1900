#!/usr/bin/env bats
# tp-send through a shared folder (dir: endpoints): every outbox batch
# lands once, oldest first, durably, and is then recorded in sent/; a
# failure stops its target's queue; a batch stream can come from stdin.

load helper
load drop_helper

setup_file() {
	tp_cluster_start
	drop_setup_file
}

teardown_file() {
	tp_cluster_stop
}

setup() {
	drop_setup
}

@test "every batch lands in the folder under <source>.<seq>, then moves to sent/" {
	queue "$W/good"
	run -0 tp-send -c "$SEND_INI"
	assert_output ""
	run -0 ls_names "$DROP"
	assert_output "billing.0000000000000001.tar.zst
billing.0000000000000002.tar.zst
billing.0000000000000003.tar.zst"
	for i in 1 2 3; do
		cmp "$W/good/$(seqname $i)" "$DROP/billing.$(seqname $i)"
	done
	run -0 ls_names "$OUTBOX/sent"
	assert_output "$(ls_names "$W/good")"
	run -0 find "$OUTBOX" -maxdepth 1 -type f
	assert_output ""
}

@test "nothing queued: exit 0, no output, no folder needed" {
	rmdir "$DROP"
	run -0 tp-send -c "$SEND_INI"
	assert_output ""
}

@test "-v logs one line per batch sent, oldest first" {
	queue "$W/good"
	run -0 tp-send -v -c "$SEND_INI"
	assert_line -n 0 "tp-send: info: target replica: sent batch 0000000000000001.tar.zst"
	assert_line -n 2 "tp-send: info: target replica: sent batch 0000000000000003.tar.zst"
}

@test "a re-run sends nothing twice" {
	queue "$W/good"
	tp-send -c "$SEND_INI"
	rm "$DROP"/*                      # the receiver took them
	run -0 tp-send -c "$SEND_INI"
	assert_output ""
	run -0 ls_names "$DROP"
	assert_output ""
}

@test "killed between the copy and the move to sent/: the re-send counts as sent" {
	queue "$W/good"
	cp "$W/good/$(seqname 1)" "$DROP/billing.$(seqname 1)"
	run -0 tp-send -c "$SEND_INI"
	run -0 ls_names "$OUTBOX/sent"
	assert_output "$(ls_names "$W/good")"
	cmp "$W/good/$(seqname 1)" "$DROP/billing.$(seqname 1)"
}

@test "different bytes under the same name: conflict, the queue stops there" {
	queue "$W/good"
	cp "$W/good/$(seqname 3)" "$DROP/billing.$(seqname 2)"
	run -65 tp-send -c "$SEND_INI"
	assert_output --partial "error: target replica: batch 0000000000000002.tar.zst conflicts with $DROP/billing.0000000000000002.tar.zst"
	run -0 ls_names "$OUTBOX/sent"
	assert_output "0000000000000001.tar.zst"
	# batch 3 was not sent ahead of 2
	[ ! -e "$DROP/billing.$(seqname 3)" ]
	[ -e "$OUTBOX/$(seqname 2)" ] && [ -e "$OUTBOX/$(seqname 3)" ]
}

@test "a missing folder is exit 69 naming it, and nothing moves" {
	queue "$W/good"
	rmdir "$DROP"
	run -69 tp-send -c "$SEND_INI"
	assert_output "tp-send: error: target replica: drop folder $DROP: No such file or directory"
	run -0 ls_names "$OUTBOX/sent"
	assert_output ""
}

@test "a file where the folder should be is exit 69" {
	queue "$W/good"
	rmdir "$DROP" && touch "$DROP"
	run -69 tp-send -c "$SEND_INI"
	assert_output --partial "drop folder $DROP: not a directory"
}

@test "a folder that refuses new files is exit 69" {
	[ "$(id -u)" != 0 ] || skip "root writes anywhere"
	queue "$W/good"
	chmod 0555 "$DROP"
	run -69 tp-send -c "$SEND_INI"
	chmod 0755 "$DROP"
	assert_output --partial "drop folder $DROP: not writable"
}

@test "an http endpoint that is down: exit 69, other targets still ship" {
	queue "$W/good"
	printf '\n[target web]\ntables = public.*\nendpoint = http://127.0.0.1:1/\nretries = 0\n' >> "$SEND_INI"
	mkdir -p "$SRC/outbox/web"
	cp "$W/good/$(seqname 1)" "$SRC/outbox/web/"
	run -69 tp-send -c "$SEND_INI"
	assert_output --regexp "^tp-send: error: target web: batch 0000000000000001.tar.zst: http://127.0.0.1:1/v1/batches/billing/0000000000000001.tar.zst: .*\(gave up after 1 attempt\)$"
	run -0 ls_names "$DROP"
	assert_line "billing.0000000000000003.tar.zst"
	[ -e "$SRC/outbox/web/$(seqname 1)" ]
}

@test "--target limits the run to one target" {
	queue "$W/good"
	printf '\n[target two]\ntables = public.*\nendpoint = dir:%s\n' "$T/drop2" >> "$SEND_INI"
	mkdir -p "$SRC/outbox/two" "$T/drop2"
	cp "$W/good/$(seqname 1)" "$SRC/outbox/two/"
	run -0 tp-send -c "$SEND_INI" --target two
	run -0 ls_names "$T/drop2"
	assert_output "billing.0000000000000001.tar.zst"
	run -0 ls_names "$DROP"
	assert_output ""
}

@test "an unknown --target is a usage error" {
	run -64 tp-send -c "$SEND_INI" --target nosuch
	assert_output --partial "unknown target \"nosuch\""
}

@test "leftover temp files of a killed run are cleared, others' are kept" {
	queue "$W/good" 1
	touch "$DROP/.tmp-send-billing-abc123" "$DROP/.tmp-send-other-abc123"
	run -0 tp-send -c "$SEND_INI"
	run -0 ls_names "$DROP"
	assert_output ".tmp-send-other-abc123
billing.0000000000000001.tar.zst"
}

@test "a second concurrent run exits 75" {
	queue "$W/good"
	mkdir -p "$SRC/lock"
	run -75 flock "$SRC/lock/tp-send.lock" tp-send -c "$SEND_INI"
	assert_output --partial "another tp-send is running"
	run -0 ls_names "$DROP"
	assert_output ""
}

@test "kill -9 at random points, then a re-run: every batch exactly once" {
	queue "$W/big"
	kill_loop 15 tp-send -c "$SEND_INI"
	run -0 ls_names "$OUTBOX/sent"
	assert_output "$(ls_names "$W/big")"
	run -0 bash -c "ls -A '$DROP' | grep -v '^\.tmp-'"
	assert_equal "$(echo "$output" | wc -l)" "$BIG_BATCHES"
	for f in "$W"/big/*; do
		cmp "$f" "$DROP/billing.${f##*/}"
	done
	run -0 find "$OUTBOX" -maxdepth 1 -type f -name '0*'
	assert_output ""
}

# ---- tp-send --target NAME - ------------------------------------------

@test "stdin: a tar stream of batches is queued and shipped" {
	craft tarstream "$T/stream.tar" "$W"/good/*
	run -0 tp-send -c "$SEND_INI" --target replica - < "$T/stream.tar"
	assert_output ""
	run -0 ls_names "$OUTBOX/sent"
	assert_output "$(ls_names "$W/good")"
	for i in 1 2 3; do
		cmp "$W/good/$(seqname $i)" "$DROP/billing.$(seqname $i)"
	done
}

@test "stdin: gzip and zstd compressed streams work" {
	(cd "$W/good" && tar -czf "$T/s.tar.gz" "$(seqname 1)")
	(cd "$W/good" && tar --zstd -cf "$T/s.tar.zst" "$(seqname 2)")
	run -0 tp-send -c "$SEND_INI" --target replica - < "$T/s.tar.gz"
	run -0 tp-send -c "$SEND_INI" --target replica - < "$T/s.tar.zst"
	run -0 ls_names "$DROP"
	assert_output "billing.0000000000000001.tar.zst
billing.0000000000000002.tar.zst"
}

@test "stdin: an entry sent before is taken as already there" {
	craft tarstream "$T/stream.tar" "$W"/good/*
	tp-send -c "$SEND_INI" --target replica - < "$T/stream.tar"
	run -0 tp-send -c "$SEND_INI" --target replica - < "$T/stream.tar"
	run -0 ls_names "$OUTBOX/sent"
	assert_output "$(ls_names "$W/good")"
}

@test "stdin: another batch under a number already sent is a conflict (65)" {
	queue "$W/good"
	tp-send -c "$SEND_INI"
	mkdir "$T/s" && zstd -qdc "$W/good/$(seqname 2)" > "$T/s/$(seqname 2 .tar)"
	(cd "$T/s" && tar -cf "$T/other.tar" "$(seqname 2 .tar)")
	run -65 tp-send -c "$SEND_INI" --target replica - < "$T/other.tar"
	assert_output --partial "conflicts with $OUTBOX/sent/0000000000000002.tar.zst"
	[ ! -e "$OUTBOX/$(seqname 2 .tar)" ]
}

@test "stdin: an entry that is not a batch name is refused with 65" {
	mkdir "$T/s" && cp "$W/good/$(seqname 1)" "$T/s/notes.txt"
	(cd "$T/s" && tar -cf "$T/bad.tar" notes.txt)
	run -65 tp-send -c "$SEND_INI" --target replica - < "$T/bad.tar"
	assert_output --partial "entry \"notes.txt\": not a batch file name"
	run -0 find "$OUTBOX" -type f
	assert_output ""
}

@test "stdin: path entries are refused with 65" {
	mkdir -p "$T/s/sub" && cp "$W/good/$(seqname 1)" "$T/s/sub/"
	(cd "$T/s" && tar -cf "$T/bad.tar" "sub/$(seqname 1)")
	run -65 tp-send -c "$SEND_INI" --target replica - < "$T/bad.tar"
	assert_output --partial "not a batch file name"
	craft dotdot "$T/dotdot.tar"
	run -65 tp-send -c "$SEND_INI" --target replica - < "$T/dotdot.tar"
	run -0 find "$OUTBOX" -type f
	assert_output ""
}

@test "stdin: a symlink entry is refused with 65" {
	mkdir "$T/s" && ln -s /etc/passwd "$T/s/$(seqname 1)"
	(cd "$T/s" && tar -cf "$T/bad.tar" "$(seqname 1)")
	run -65 tp-send -c "$SEND_INI" --target replica - < "$T/bad.tar"
	assert_output --partial "not a regular file"
}

@test "stdin: a corrupt batch is refused with 65; the good ones before it ship" {
	mkdir "$T/s"
	cp "$W/good/$(seqname 1)" "$T/s/"
	head -c 100 "$W/good/$(seqname 2)" > "$T/s/$(seqname 2)"
	cp "$W/good/$(seqname 3)" "$T/s/"
	(cd "$T/s" && tar -cf "$T/bad.tar" "$(seqname 1)" "$(seqname 2)" "$(seqname 3)")
	run -65 tp-send -c "$SEND_INI" --target replica - < "$T/bad.tar"
	assert_output --partial "stdin: batch 0000000000000002.tar.zst:"
	run -0 ls_names "$DROP"
	assert_output "billing.0000000000000001.tar.zst"
}

@test "stdin: an entry whose name and header disagree is refused with 65" {
	mkdir "$T/s" && cp "$W/good/$(seqname 1)" "$T/s/$(seqname 7)"
	(cd "$T/s" && tar -cf "$T/bad.tar" "$(seqname 7)")
	run -65 tp-send -c "$SEND_INI" --target replica - < "$T/bad.tar"
	assert_output --partial "holds batch 1"
	mkdir "$T/o" && cp "$W/other/$(seqname 1)" "$T/o/"
	(cd "$T/o" && tar -cf "$T/other.tar" "$(seqname 1)")
	run -65 tp-send -c "$SEND_INI" --target replica - < "$T/other.tar"
	assert_output --partial "is for target other, not replica"
}

@test "stdin: garbage is refused with 65" {
	head -c 5000 /dev/urandom > "$T/garbage"
	run -65 tp-send -c "$SEND_INI" --target replica - < "$T/garbage"
	assert_output --partial "stdin:"
}

@test "stdin: larger than max_batch_bytes is refused with 65" {
	src_ini "$SEND_INI" "$SRC" "dir:$DROP" "max_batch_bytes = 200"
	craft tarstream "$T/stream.tar" "$W/good/$(seqname 1)"
	run -65 tp-send -c "$SEND_INI" --target replica - < "$T/stream.tar"
	assert_output --partial "larger than max_batch_bytes"
}

@test "stdin: empty input is refused with 65, an empty tar is nothing to do" {
	run -65 tp-send -c "$SEND_INI" --target replica - < /dev/null
	assert_output --partial "stdin: not a tar stream of batches"
	tar -cf "$T/empty.tar" -T /dev/null
	run -0 tp-send -c "$SEND_INI" --target replica - < "$T/empty.tar"
	assert_output ""
}

@test "SIGTERM while waiting for stdin: exit 75, nothing half-stored" {
	craft tarstream "$T/stream.tar" "$W/good/$(seqname 1)"
	{ sleep 1; cat "$T/stream.tar"; } | tp-send -c "$SEND_INI" --target replica - 3>&- &
	local pid=$!
	sleep 0.3
	kill -TERM "$pid"
	local status=0
	wait "$pid" || status=$?
	assert_equal "$status" 75
	run -0 bash -c "ls -A '$OUTBOX' | grep -v '^sent$' || true"
	assert_output ""
}

@test "stdin: needs --target, and refuses a terminal" {
	run -64 tp-send -c "$SEND_INI" - < /dev/null
	assert_output --partial "needs --target"
	run -64 script -qec "tp-send -c '$SEND_INI' --target replica -" /dev/null
	assert_output --partial "stdin is a terminal"
}
