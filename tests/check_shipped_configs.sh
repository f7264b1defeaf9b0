#!/bin/sh
# Every config shipped in configs/ and configs/protocol/ validates with the real plugins of this
# build: no error, and for the RingMo configs only the warning that lists the MindSpore-only keys.
set -u
: "${SIMMIMCTL:?run through make check}" "${SM_TEST_SRCDIR:?}"
failures=0
for f in "$SM_TEST_SRCDIR"/../configs/*.yaml "$SM_TEST_SRCDIR"/../configs/protocol/*.yaml; do
    err=$("$SIMMIMCTL" check-config "$f" 2>&1 >/dev/null)
    rc=$?
    if [ "$rc" != 0 ]; then
        echo "FAIL: $f: exit $rc" >&2
        printf '%s\n' "$err" | sed 's/^/  /' >&2
        failures=$((failures + 1))
    elif [ -n "$(printf '%s\n' "$err" | grep -v '^warning: .*ignored RingMo/MindSpore-only keys' | grep .)" ]; then
        echo "FAIL: $f: unexpected messages" >&2
        printf '%s\n' "$err" | sed 's/^/  /' >&2
        failures=$((failures + 1))
    fi
done
[ "$failures" = 0 ] && echo "PASS: every shipped config validates with the real plugins"
exit $((failures > 0))
