#!/usr/bin/env bats
# The config file: every mistake exits 78 with one line naming file, line
# and key, before anything else happens (no database is needed here).
# tp-install stands for every command: they all load the config first.

load helper

setup() {
	CFG=$TP_TMP/tp.ini
}

# refused TEXT LINE: the config in TEXT is refused with exactly LINE.
refused() {
	printf '%s' "$1" > "$CFG"
	run --separate-stderr -78 tp-install -c "$CFG" --dry-run
	assert_equal "$stderr" "tp-install: error: $CFG$2"
	assert_output ""
}

NODE=$'[node]\nname = src\nconninfo = dbname=nowhere\n'

@test "unknown key: file, line and key" {
	refused "$NODE"$'colour = blue\n' ":4: colour: unknown key in [node]"
}

@test "repeated key, also as an indented line" {
	refused "$NODE"$'  name = other\n' ":4: name: repeated (first set on line 2)"
}

@test "missing required key names the section's line" {
	refused "$NODE"$'\n[target replica]\nendpoint = dir:/x\n' \
		":5: tables: missing in [target replica]"
}

@test "missing [node] section" {
	refused $'[source s]\n' ": [node]: section missing"
}

@test "bad values" {
	refused "$NODE"$'ddl = sometimes\n' \
		":4: ddl: \"sometimes\" is not diff, event-triggers or off"
	refused "$NODE"$'retention = a week\n' \
		":4: retention: \"a week\" is not a duration (like 90, 45s, 30m, 12h, 7d, 2w)"
	refused "$NODE"$'[target r]\ntables = public\nendpoint = dir:/x\n' \
		":5: tables: \"public\" is not schema.table (no '.')"
	refused "$NODE"$'[target r]\ntables = a.b\nendpoint = ftp://h/\n' \
		":6: endpoint: \"ftp://h/\" is not http://..., https://... or dir:/absolute/path"
}

@test "duplicate target" {
	refused "$NODE"$'[target r]\ntables=a.b\nendpoint=dir:/x\n[target r]\n' \
		":7: [target r]: repeated section (first on line 4)"
}

@test "unknown section" {
	refused "$NODE"$'[targets r]\n' \
		":4: [targets r]: unknown section (want [node], [target NAME] or [source NAME])"
}

@test "a file that cannot be opened" {
	run --separate-stderr -78 tp-install -c "$TP_TMP/none.ini" --dry-run
	assert_equal "$stderr" "tp-install: error: $TP_TMP/none.ini: cannot open: No such file or directory"
}

@test "\$TP_CONFIG is read when -c is absent" {
	printf '%s' "$NODE"$'bogus = 1\n' > "$CFG"
	TP_CONFIG=$CFG run --separate-stderr -78 tp-install --dry-run
	assert_equal "$stderr" "tp-install: error: $CFG:4: bogus: unknown key in [node]"
}

@test "a line longer than 200 bytes is read whole" {
	# The value is long and wrong: the message must quote it whole.
	long=$(printf 'x%.0s' {1..300})
	refused "$NODE"$'ddl = '"$long"$'\n' ":4: ddl: \"$long\" is not diff, event-triggers or off"
}
