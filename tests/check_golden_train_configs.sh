#!/bin/sh
# The configs of the training golden files (tests/golden_train/*.yaml, written by
# tools/golden_train/gen_golden_train.py) validate with the real plugins of this build: they
# describe the same training as the official config in each file, so a replay can use them.
# train_config.accumulation_steps is not in the schema yet: a config that fails only on that key
# is reported as XFAIL and validated once more without the key, so the rest is still checked.
set -u
: "${SIMMIMCTL:?run through make check}" "${SM_TEST_SRCDIR:?}"
dir="$SM_TEST_SRCDIR/golden_train"
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
failures=0
count=0
for f in "$dir"/*.yaml; do
    count=$((count + 1))
    err=$("$SIMMIMCTL" check-config "$f" 2>&1 >/dev/null)
    rc=$?
    if [ "$rc" != 0 ] && [ "$(printf '%s\n' "$err" | grep -c .)" = 1 ] &&
        printf '%s\n' "$err" | grep -q "train_config.accumulation_steps: unknown key"; then
        sed '/^  accumulation_steps:/d' "$f" >"$tmp/$(basename "$f")"
        err=$("$SIMMIMCTL" check-config "$tmp/$(basename "$f")" 2>&1 >/dev/null)
        rc=$?
        [ "$rc" = 0 ] && echo "XFAIL: $f: train_config.accumulation_steps is not in the schema yet (the rest validates)"
    fi
    if [ "$rc" != 0 ] || [ -n "$err" ]; then
        echo "FAIL: $f: exit $rc" >&2
        printf '%s\n' "$err" | sed 's/^/  /' >&2
        failures=$((failures + 1))
    fi
done
[ "$count" -ge 6 ] || { echo "FAIL: only $count configs in $dir" >&2; exit 1; }
[ "$failures" = 0 ] && echo "PASS: $count golden_train configs validate"
exit $((failures > 0))
