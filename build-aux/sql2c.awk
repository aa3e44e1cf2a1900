# sql2c.awk - embed the sql/ files into C as sql_files[] (POSIX awk: runs on mawk).
# Each file becomes one string; backslashes and double quotes are escaped.
BEGIN { print "/* generated from the sql/ folder by build-aux/sql2c.awk; do not edit */"
        print "#include \"sqlfiles.h\""
        print "const struct sql_file sql_files[] = {" ; open = 0 }
FNR == 1 { if (open) print "\t}," ; n = split(FILENAME, p, "/")
           printf "\t{ \"%s\",\n", p[n] ; open = 1 }
{ gsub(/\\/, "&&"); gsub(/"/, "\\\""); printf "\t\"%s\\n\"\n", $0 }
END { if (open) print "\t},"; print "\t{ 0, 0 }"; print "};" }
