# batch_helper.bash - read batch files back in tests, independently of
# teleport's own reader: GNU tar and zstd/gzip do the unpacking.

# batch_events FILE: the event lines of one batch (definitions included).
batch_events() {
	tar -xOf "$1" --wildcards 'events-*'
}

# dump_events DIR: every event of every batch in DIR, in sequence order, as
#   SEQ <tab> OP <tab> SCHEMA.TABLE <tab> fields...
# Definition lines are consumed to name the tables; schema changes (S) are
# left out: these are the row events.
dump_events() {
	local f seq
	for f in $(ls "$1" | grep -E '^[0-9]{16}\.tar' | sort); do
		seq=$((10#${f%%.*}))
		batch_events "$1/$f" | awk -F'\t' -v OFS='\t' -v seq="$seq" '
			$1 == "=" { name[$2] = $3 "." $4; next }
			$1 == "S" { next }
			{ t = $2; $2 = name[t]; print seq, $0 }'
	done
}

# src_config FILE DB SPOOL [extra lines for the target section]
src_config() {
	local file=$1 db=$2 spool=$3
	shift 3
	{
		printf '[node]\nname = src\nconninfo = %s\nspool = %s\n\n' "$(tp_conninfo "$db")" "$spool"
		printf '[target replica]\ntables = public.*\nendpoint = dir:%s/drop\n' "$spool"
		local l
		for l in "$@"; do printf '%s\n' "$l"; done
	} > "$file"
}

# for `run bash -c '... dump_events ...'`
export -f batch_events dump_events
