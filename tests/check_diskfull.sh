#!/bin/sh
# A disk that fills up during training (docs/reliability.md §2, figure b): on a 200 KiB tmpfs the
# run stops with a message naming the file and the cause, loses nothing it had (every checkpoint
# left verifies, no partial or temporary file, metrics.jsonl whole lines only), and once there is
# room the same command resumes and ends exactly where an uninterrupted run ends.
# Mounting a tmpfs needs root (CI runs as root); without it this test reports SKIP (77).
set -u
: "${SIMMIMCTL:?run through make check}"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/simmim-disk-XXXXXX")
disk="$tmp/disk"
mkdir "$disk"
trap 'umount "$disk" 2>/dev/null; rm -rf "$tmp"' EXIT
failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }

if [ ! -r /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then
    echo "FAIL: Fashion-MNIST is missing: install the Debian package dataset-fashion-mnist" >&2
    exit 1
fi
if ! mount -t tmpfs -o size=200k simmim-test "$disk" 2>/dev/null; then
    echo "SKIP: cannot mount a tmpfs here (needs root): the disk-full test did not run"
    exit 77
fi

# 50 epochs of a tiny model, a checkpoint (~60 KB) and a recon PNG (~6 KB) each epoch: the
# 200 KiB disk fills up after a few epochs
sed -e 's/epoch: 2,/epoch: 50,/' \
    -e 's/batch_size: 8, image_size: 16, per_epoch_size: 3/batch_size: 32, image_size: 32, per_epoch_size: 4/' \
    "${SM_TEST_SRCDIR:?}/run/tiny.yaml" >"$tmp/run.yaml"
grep -q "epoch: 50, batch_size: 32" "$tmp/run.yaml" || { echo "FAIL: tests/run/tiny.yaml changed" >&2; exit 1; }
cp "$tmp/run.yaml" "$disk/run.yaml"
mkdir "$tmp/straight" && cp "$tmp/run.yaml" "$tmp/straight/run.yaml"

"$SIMMIMCTL" run "$disk/run.yaml" >/dev/null 2>"$tmp/err1"
rc=$?
[ "$rc" = 1 ] || fail "disk full: exit $rc, want 1"
grep -q "$disk/out/tiny-[0-9]*_[0-9]*.safetensors: cannot write: No space left on device" \
    "$tmp/err1" || { tail -3 "$tmp/err1" >&2; fail "disk full: no message naming the checkpoint and ENOSPC"; }
ls "$disk/out"/*.tmp.* >/dev/null 2>&1 && fail "disk full: temporary files were left"
find "$disk/out" -type f -size 0 | grep -q . && fail "disk full: empty files were left: $(find "$disk/out" -type f -size 0)"
n=0
for f in "$disk/out"/tiny-*.safetensors; do
    [ -e "$f" ] || continue
    n=$((n + 1))
    "$SIMMIMCTL" inspect "$f" >/dev/null 2>&1 || fail "disk full: $f does not verify"
done
[ "$n" -ge 1 ] || fail "disk full: no checkpoint was kept"
grep -v '^{.*}$' "$disk/out/metrics.jsonl" | grep -q . && fail "disk full: metrics.jsonl has a partial line"
grep -q '"status": "failed"' "$disk/out/summary.json" 2>/dev/null ||
    fail "disk full: summary.json does not say failed"

# room again: the same command resumes and finishes where an uninterrupted run does
mount -o remount,size=8m "$disk" || fail "cannot grow the tmpfs"
"$SIMMIMCTL" run "$disk/run.yaml" >/dev/null 2>"$tmp/err2"
rc=$?
[ "$rc" = 0 ] || { tail -3 "$tmp/err2" >&2; fail "after freeing space: exit $rc, want 0"; }
grep -q "resuming from .*tiny-" "$tmp/err2" || fail "after freeing space: the run did not resume"
"$SIMMIMCTL" run "$tmp/straight/run.yaml" >/dev/null 2>"$tmp/err3" || fail "the uninterrupted run failed"
cmp -s "$tmp/straight/out/tiny-50_200.safetensors" "$disk/out/tiny-50_200.safetensors" ||
    fail "after the disk-full stop and resume, the final checkpoint differs from an uninterrupted run's"
[ "$(grep -c '"event":"step"' "$disk/out/metrics.jsonl")" = 200 ] ||
    fail "after resume: not one step record per step"

[ "$failures" = 0 ] && echo "PASS: disk full: clear error, nothing lost, resume ends bit-identical"
exit $((failures > 0))
