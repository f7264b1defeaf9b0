#!/bin/sh
# tests/check_keys_read.sh - every config key we accept acts or is listed as ignored: each key of
# the core schema and of every component (`simmimctl plugins --core`, `simmimctl plugins`) is
# either of type "ignored" (reported once by check-config) or named in the code that reads the
# config (a quoted "key" or "section.key" outside the key tables and the resume comparison). A key added to a schema and
# never read fails here. What reading it does is for the tests of each key (docs/config.md).
set -u
: "${SIMMIMCTL:?run through make check}" "${SM_TEST_SRCDIR:?}"
src="$SM_TEST_SRCDIR/.."
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT

{ "$SIMMIMCTL" plugins --core && "$SIMMIMCTL" plugins; } >"$tmp/keys.txt" 2>/dev/null ||
    { echo "FAIL: simmimctl plugins"; exit 1; }
# rows of the key tables: 4 spaces, key, type, ...; the header rows say "key type"
awk '/^    [a-z_.0-9]+ +[a-z|-]+ / && $1 != "key" { print $1, $2 }' "$tmp/keys.txt" | sort -u >"$tmp/rows"
[ "$(wc -l <"$tmp/rows")" -ge 100 ] || { echo "FAIL: only $(wc -l <"$tmp/rows") keys listed"; exit 1; }

# every quoted identifier of the C sources, but for the key tables themselves and
# core/train/resume.c (whose lists compare two configs by key: that is not acting on a key)
find "$src/core" "$src/plugins" "$src/backbones" "$src/datasets" -name '*.c' ! -name resume.c \
    ! -name config_schema.c -print |
    xargs grep -h -v 'SM_KEY_\|IGNORED(' |
    grep -o '"[a-z_][a-z_0-9.]*"' | tr -d '"' | sort -u >"$tmp/quoted"

fails=0 checked=0 ignored=0
while read -r key type; do
    if [ "$type" = ignored ]; then
        ignored=$((ignored + 1))
        continue
    fi
    checked=$((checked + 1))
    leaf=${key##*.}
    if ! grep -q -x -e "$leaf" -e "$key" -e "[a-z_0-9.]*\.$leaf" "$tmp/quoted"; then
        echo "FAIL: key '$key' is accepted but never read (make it act, or list it as ignored)"
        fails=$((fails + 1))
    fi
done <"$tmp/rows"
echo "checked $checked keys read by name; $ignored listed as ignored"
[ "$fails" = 0 ]
