#!/usr/bin/env bats
# tp-recv --from DIR: good batches move, verified, into the inbox; bad ones
# are refused with 65 and quarantined with a reason, and nothing of them
# reaches the inbox; duplicates vanish quietly; a kill -9 anywhere, then a
# re-run, neither loses nor doubles a batch.

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

# Send the good batches through tp-send, as in production.
send_good() {
	queue "$W/good"
	tp-send -c "$SEND_INI"
}

# refused NAME REASON: exit 65, one error line, the file quarantined with
# REASON in its .why, gone from the drop folder, the inbox unchanged.
refused() {
	local name=$1 reason=$2 before
	before=$(inbox_files | sort)
	run -65 tp-recv -c "$RECV_INI" --from "$DROP"
	assert_output --regexp "^tp-recv: error: rejected $DROP/$name: .*$reason"
	[ ! -e "$DROP/$name" ]
	run -0 bash -c "cat '$DST'/quarantine/*-'$name'.why"
	assert_output --partial "$reason"
	[ -f "$(ls "$DST"/quarantine/*-"$name")" ]
	run -0 bash -c "$(declare -f inbox_files); DST='$DST' inbox_files | sort"
	assert_output "$before"
}

# Batch files anywhere below the receiver's inbox.
inbox_files() {
	[ ! -d "$DST/inbox" ] || find "$DST/inbox" -type f -name '0*'
}

@test "send then recv: every batch in the inbox, in order, byte for byte" {
	send_good
	run -0 tp-recv -c "$RECV_INI" --from "$DROP"
	assert_output ""
	run -0 ls_names "$INBOX"
	assert_output "$(ls_names "$W/good")"
	for i in 1 2 3; do
		cmp "$W/good/$(seqname $i)" "$INBOX/$(seqname $i)"
	done
	run -0 ls_names "$DROP"
	assert_output ""
}

@test "-v logs each batch received, oldest first" {
	send_good
	run -0 tp-recv -v -c "$RECV_INI" --from "$DROP"
	assert_line -n 0 "tp-recv: info: source billing: received batch 1 from $DROP/billing.0000000000000001.tar.zst"
	assert_line -n 2 --partial "received batch 3"
}

@test "an empty folder: exit 0 and silence" {
	run -0 tp-recv -c "$RECV_INI" --from "$DROP"
	assert_output ""
}

@test "a missing folder is exit 69 naming it" {
	run -69 tp-recv -c "$RECV_INI" --from "$T/nosuch"
	assert_output "tp-recv: error: drop folder $T/nosuch: No such file or directory"
}

@test "other files and temp files in the folder are left alone" {
	send_good
	touch "$DROP/README" "$DROP/.tmp-send-billing-x1y2z3"
	run -0 tp-recv -c "$RECV_INI" --from "$DROP"
	run -0 ls_names "$DROP"
	assert_output ".tmp-send-billing-x1y2z3
README"
}

@test "an identical re-drop is removed quietly, also once applied" {
	send_good
	tp-recv -c "$RECV_INI" --from "$DROP"
	drop_as "billing.$(seqname 1)" "$W/good/$(seqname 1)"
	mkdir "$INBOX/applied" && mv "$INBOX/$(seqname 2)" "$INBOX/applied/"
	drop_as "billing.$(seqname 2)" "$W/good/$(seqname 2)"
	run -0 tp-recv -c "$RECV_INI" --from "$DROP"
	assert_output ""
	run -0 ls_names "$DROP"
	assert_output ""
	run -0 ls_names "$INBOX"
	assert_output "0000000000000001.tar.zst
0000000000000003.tar.zst
applied"
	[ ! -e "$DST/quarantine" ] || [ "$(quarantined)" = 0 ]
}

@test "a re-drop with other compression but the same manifest is a duplicate" {
	send_good
	tp-recv -c "$RECV_INI" --from "$DROP"
	zstd -qdc "$W/good/$(seqname 1)" > "$DROP/billing.$(seqname 1 .tar)"
	run -0 tp-recv -c "$RECV_INI" --from "$DROP"
	run -0 ls_names "$DROP"
	assert_output ""
	[ ! -e "$INBOX/$(seqname 1 .tar)" ]
}

@test "a different batch under a number already received is a conflict" {
	send_good
	tp-recv -c "$RECV_INI" --from "$DROP"
	# batch 3's bytes renamed 2 would fail the header check first; the
	# big batches are a genuinely different, well signed batch 2
	cp "$W/big/$(seqname 2)" "$DROP/billing.$(seqname 2)"
	refused "billing.$(seqname 2)" "conflicts with batch already received"
	cmp "$W/good/$(seqname 2)" "$INBOX/$(seqname 2)"
}

@test "truncated file: refused, quarantined" {
	head -c 300 "$W/good/$(seqname 1)" > "$DROP/billing.$(seqname 1)"
	refused "billing.$(seqname 1)" ""
}

@test "garbage bytes: refused, quarantined" {
	head -c 4096 /dev/urandom > "$DROP/billing.$(seqname 1)"
	refused "billing.$(seqname 1)" ""
}

@test "an empty file: refused, quarantined" {
	: > "$DROP/billing.$(seqname 1)"
	refused "billing.$(seqname 1)" ""
}

@test "one flipped byte (digest mismatch): refused, quarantined" {
	craft flip "$W/good/$(seqname 1)" "$DROP/billing.$(seqname 1 .tar)"
	refused "billing.$(seqname 1 .tar)" "sha256 mismatch"
}

@test "signed with another token: refused, quarantined" {
	dst_ini "$RECV_INI" "$DST" "$W/wrong-token"
	send_good
	refused "billing.$(seqname 1)" "signature"
}

@test "forged signature: refused, quarantined" {
	craft forge "$W/good/$(seqname 1)" "$DROP/billing.$(seqname 1 .tar)" not-the-token
	refused "billing.$(seqname 1 .tar)" "signature"
}

@test "the forging is otherwise sound: signed with the right token passes" {
	craft forge "$W/good/$(seqname 1)" "$DROP/billing.$(seqname 1 .tar)" the-shared-token
	run -0 tp-recv -c "$RECV_INI" --from "$DROP"
	[ -f "$INBOX/$(seqname 1 .tar)" ]
}

@test "unsigned while a token is configured: refused, quarantined" {
	craft unsigned "$W/good/$(seqname 1)" "$DROP/billing.$(seqname 1 .tar)"
	refused "billing.$(seqname 1 .tar)" "not signed"
}

@test "the crafted variants are otherwise sound: unsigned passes without a token" {
	dst_ini "$RECV_INI" "$DST" ""
	craft unsigned "$W/good/$(seqname 1)" "$DROP/billing.$(seqname 1 .tar)"
	run -0 tp-recv -c "$RECV_INI" --from "$DROP"
	[ -f "$INBOX/$(seqname 1 .tar)" ]
}

@test "unknown source: refused, quarantined" {
	drop_as "stranger.$(seqname 1)" "$W/good/$(seqname 1)"
	refused "stranger.$(seqname 1)" "unknown source stranger"
	[ ! -e "$DST/inbox/stranger" ]
}

@test "a batch for another target: refused, quarantined" {
	drop_as "billing.$(seqname 1)" "$W/other/$(seqname 1)"
	refused "billing.$(seqname 1)" "batch is for target other, not this node replica"
}

@test "file name says another source than the header: refused" {
	printf '\n[source sales]\ntoken_file = %s\n' "$W/token" >> "$RECV_INI"
	drop_as "sales.$(seqname 1)" "$W/good/$(seqname 1)"
	refused "sales.$(seqname 1)" "batch comes from source billing, its name says sales"
}

@test "file name seq differs from the header's: refused, quarantined" {
	drop_as "billing.$(seqname 2)" "$W/good/$(seqname 1)"
	refused "billing.$(seqname 2)" "batch is number 1, its name says 2"
}

@test "a tar with a ../x member: refused, quarantined, nothing extracted" {
	craft dotdot "$DROP/billing.$(seqname 1 .tar)"
	refused "billing.$(seqname 1 .tar)" ""
	craft dotdot "$W/good/$(seqname 2)" "$DROP/billing.$(seqname 2 .tar)"
	refused "billing.$(seqname 2 .tar)" ""
	[ ! -e "$DST/x" ] && [ ! -e "$DST/inbox/x" ] && [ ! -e "$T/x" ]
}

@test "larger than max_batch_bytes: refused, quarantined" {
	dst_ini "$RECV_INI" "$DST" "$W/token" "max_batch_bytes = 200"
	drop_as "billing.$(seqname 1)" "$W/good/$(seqname 1)"
	refused "billing.$(seqname 1)" "larger than max_batch_bytes"
}

@test "a symlink in the folder is not followed" {
	ln -s "$W/good/$(seqname 1)" "$DROP/billing.$(seqname 1)"
	run -0 tp-recv -c "$RECV_INI" --from "$DROP"
	run -0 inbox_files
	assert_output ""
}

@test "bad batches do not hold up good ones; exit 65 at the end" {
	send_good
	head -c 4096 /dev/urandom > "$DROP/billing.$(seqname 4)"
	drop_as "stranger.$(seqname 1)" "$W/good/$(seqname 1)"
	run -65 tp-recv -c "$RECV_INI" --from "$DROP"
	assert_equal "$(echo "$output" | grep -c 'error: rejected')" 2
	run -0 ls_names "$INBOX"
	assert_output "$(ls_names "$W/good")"
	assert_equal "$(quarantined)" 2
	run -0 ls_names "$DROP"
	assert_output ""
}

@test "an unreadable token_file is a configuration error; the batch stays" {
	dst_ini "$RECV_INI" "$DST" "$T/no-such-token"
	send_good
	run -78 tp-recv -c "$RECV_INI" --from "$DROP"
	assert_output --partial "source billing"
	run -0 ls_names "$DROP"
	assert_output "$(cd "$W/good" && for f in *; do echo "billing.$f"; done)"
	[ ! -e "$DST/quarantine" ] || [ "$(quarantined)" = 0 ]
}

@test "a second concurrent run exits 75" {
	send_good
	mkdir -p "$DST/lock"
	run -75 flock "$DST/lock/tp-recv.lock" tp-recv -c "$RECV_INI" --from "$DROP"
	assert_output --partial "another tp-recv is running"
	run -0 inbox_files
	assert_output ""
}

@test "no way in given: usage error naming them" {
	run -64 tp-recv -c "$RECV_INI"
	assert_output --partial "--from DIR, --listen HOST:PORT, --inetd or --cgi"
}

@test "kill -9 of tp-send and tp-recv at random points: every batch exactly once" {
	queue "$W/big"
	for round in 1 2 3; do
		kill_loop 5 tp-send -c "$SEND_INI" &
		local sender=$!
		kill_loop 5 tp-recv -c "$RECV_INI" --from "$DROP"
		wait "$sender"
	done
	tp-send -c "$SEND_INI"
	tp-recv -c "$RECV_INI" --from "$DROP"
	run -0 ls_names "$INBOX"
	assert_output "$(ls_names "$W/big")"
	for f in "$W"/big/*; do
		cmp "$f" "$INBOX/${f##*/}"
	done
	run -0 bash -c "ls -A '$DROP' | grep -v '^\.tmp-' || true"
	assert_output ""
	[ ! -e "$DST/quarantine" ] || [ "$(quarantined)" = 0 ]
}

@test "tp-recv killed after storing, before removing the dropped file" {
	send_good
	# what such a kill leaves: the batch in the inbox and still in DROP
	mkdir -p "$INBOX"
	cp "$W/good/$(seqname 1)" "$INBOX/"
	run -0 tp-recv -c "$RECV_INI" --from "$DROP"
	run -0 ls_names "$INBOX"
	assert_output "$(ls_names "$W/good")"
	run -0 ls_names "$DROP"
	assert_output ""
}
