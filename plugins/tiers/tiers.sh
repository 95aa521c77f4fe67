#!/bin/sh
# segflow plugin `tiers`, kind `value`: gold / silver / bronze by a numeric column.
# POSIX sh and awk only. It reads its request with sed, which works because segflow writes the
# request as one line of compact JSON and this kind's `with` is flat (see plugin.yaml);
# a plugin with richer config is better written in a language with a JSON parser.
set -eu

fail() { # message, exit code (65: bad data, 78: bad config; segflow does not retry those)
    echo "tiers.value: $1" >&2
    exit "$2"
}

request=$(cat)
case "$request" in
    '{"protocol":1,'*) ;;
    *) fail "segflow sent a request of another protocol version; this plugin speaks protocol 1" 78 ;;
esac

# `with` is a flat object: {"column":"monetary","gold_at":500,"silver_at":100}
with=$(printf '%s\n' "$request" | sed -n 's/.*"with":{\([^}]*\)}.*/\1/p')
field() { # the value of key $1 in `with`, quotes removed
    printf '%s\n' "$with" | sed -n "s/.*\"$1\":\"\{0,1\}\([^\",]*\)\"\{0,1\}.*/\1/p"
}
column=$(field column)
gold_at=$(field gold_at)
silver_at=$(field silver_at)
[ -n "$column" ] || fail "no \`column\` in the step's config" 78
awk -v g="$gold_at" -v s="$silver_at" 'BEGIN { exit !(g + 0 >= s + 0) }' ||
    fail "gold_at ($gold_at) is below silver_at ($silver_at)" 78

# The one input (plugin.yaml says max 1) and the output folder.
input=$(printf '%s\n' "$request" | sed -n 's/.*"inputs":\[{[^]]*"path":"\([^"]*\)".*/\1/p')
output_dir=$(printf '%s\n' "$request" | sed -n 's/.*"output_dir":"\([^"]*\)".*/\1/p')
[ -f "$input" ] || fail "cannot find the input file in the request" 65
[ -d "$output_dir" ] || fail "cannot find the output folder in the request" 65

echo "tiering by $column: gold from $gold_at, silver from $silver_at" >&2
counts=$(awk -F, -v column="$column" -v g="$gold_at" -v s="$silver_at" -v out="$output_dir/tiers.csv" '
    NR == 1 {
        for (i = 1; i <= NF; i++) if ($i == column) at = i
        if (!at) { print "the column `" column "` is not in the input (its columns: " $0 ")" > "/dev/stderr"; exit 78 }
        print $0 ",value_tier" > out
        next
    }
    index($0, "\"") { print "row " NR - 1 ": quoted CSV fields are beyond this example plugin" > "/dev/stderr"; exit 65 }
    $at !~ /^-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?$/ { print "row " NR - 1 ": `" column "` is not a number" > "/dev/stderr"; exit 65 }
    {
        tier = ($at + 0 >= g + 0) ? "gold" : ($at + 0 >= s + 0) ? "silver" : "bronze"
        n[tier]++
        print $0 "," tier > out
    }
    END { printf "%d %d %d\n", n["gold"], n["silver"], n["bronze"] }
' "$input") || exit $?

set -- $counts
echo "gold $1, silver $2, bronze $3" >&2
printf '{"protocol":1,"outputs":{"gold":%d,"silver":%d,"bronze":%d},"datasets":[{"name":"main","file":"tiers.csv","format":"csv"}]}\n' "$1" "$2" "$3"
