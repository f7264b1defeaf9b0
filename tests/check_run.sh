#!/bin/sh
# simmimctl run end to end on the embedded default data (Fashion-MNIST, Debian's
# dataset-fashion-mnist): a short run writes its outputs and exits 0; Ctrl-C (SIGINT) stops it
# after the current step with a checkpoint and exit status 1; the same command resumes.
set -u
: "${SIMMIMCTL:?run through make check}"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/simmim-run-XXXXXX")
trap 'rm -rf "$tmp"' EXIT
failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }

if [ ! -r /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then
    echo "FAIL: Fashion-MNIST is missing: install the Debian package dataset-fashion-mnist" >&2
    exit 1
fi

cat "${SM_TEST_SRCDIR:?}/run/tiny.yaml" >"$tmp/tiny.yaml" || exit 1

# ---- a short run -------------------------------------------------------------------------------
"$SIMMIMCTL" run "$tmp/tiny.yaml" >"$tmp/stdout" 2>"$tmp/err"
rc=$?
[ "$rc" = 0 ] || { cat "$tmp/err" >&2; fail "run: exit $rc, want 0"; }
[ -s "$tmp/stdout" ] && fail "run printed to stdout (progress belongs on stderr)"
for f in config.yaml metrics.jsonl summary.json tiny-2_6.safetensors; do
    [ -s "$tmp/out/$f" ] || fail "run did not write out/$f"
done
grep -q '"status": "completed"' "$tmp/out/summary.json" || fail "summary.json: not completed"
[ "$(grep -c '"event":"step"' "$tmp/out/metrics.jsonl")" = 6 ] || fail "metrics.jsonl: not 6 steps"
grep -q "done: 2 epochs, 6 steps" "$tmp/err" || fail "run: no final line"
"$SIMMIMCTL" inspect "$tmp/out/tiny-2_6.safetensors" >"$tmp/inspect" 2>&1 ||
    fail "the checkpoint does not pass inspect"
grep -q "encoder.blocks.0.attn.qkv.weight" "$tmp/inspect" || fail "checkpoint lacks the encoder"

# ---- simmimctl reconstruct with that checkpoint: bad images are named and left out ---------------
ck="$tmp/out/tiny-2_6.safetensors"
mkdir "$tmp/img" && "$SM_TEST_BUILDDIR/mkimages" "$tmp/img" >/dev/null || fail "mkimages"
"$SIMMIMCTL" reconstruct "$tmp/tiny.yaml" --checkpoint "$ck" --output "$tmp/fig.png" "$tmp/img/aircas/img0.jpg" \
    "$tmp/nosuch.jpg" "$tmp/tiny.yaml" "$tmp/img/aircas/img1.jpg" >"$tmp/fig.out" 2>"$tmp/fig.err"
rc=$?
[ "$rc" = 1 ] || fail "reconstruct with 2 bad images: exit $rc, want 1"
grep -q "nosuch.jpg: cannot open" "$tmp/fig.err" || fail "reconstruct: the missing image is not named"
grep -q "tiny.yaml: not a decodable image" "$tmp/fig.err" || fail "reconstruct: the non-image is not named"
[ "$(grep -c ': loss ' "$tmp/fig.out")" = 2 ] || fail "reconstruct: not one loss line per good image"
# 4 x 2 panels of 16-px images enlarged 8 times, 4-px gaps, a 22-px header: 532 x 290
[ "$(od -An -tu1 -j16 -N8 "$tmp/fig.png" | tr -s ' ' | sed 's/^ //')" = "0 0 2 20 0 0 1 34" ] ||
    fail "reconstruct: the figure is not 4 x 2 panels of 16-px images enlarged to 128 px"
"$SIMMIMCTL" reconstruct "$tmp/tiny.yaml" "$tmp/img/aircas/img0.jpg" >/dev/null 2>"$tmp/fig.err"
[ $? = 2 ] && grep -q -- "--checkpoint FILE is required" "$tmp/fig.err" || fail "reconstruct without --checkpoint"
"$SIMMIMCTL" reconstruct "$tmp/tiny.yaml" --options model.depth=2 --checkpoint "$ck" --output "$tmp/fig2.png" \
    "$tmp/img/aircas/img0.jpg" >/dev/null 2>"$tmp/fig.err"
[ $? = 1 ] && grep -q "lacks 15 of the model's 39 tensors" "$tmp/fig.err" ||
    { cat "$tmp/fig.err" >&2; fail "reconstruct with a checkpoint of another model"; }
[ -e "$tmp/fig2.png" ] && fail "reconstruct wrote a figure with the wrong checkpoint"

# ---- data that is not there: the message names the file and where the section was set ---------
"$SIMMIMCTL" run "$tmp/tiny.yaml" --options output_dir=nodata pretrain_dataset.reader=aircas \
    pretrain_dataset.data_path="$tmp/none" >/dev/null 2>"$tmp/errd"
rc=$?
[ "$rc" = 1 ] || fail "missing data: exit $rc, want 1"
grep -q "none.*No such file or directory (pretrain_dataset, .*tiny.yaml:[0-9]*)" "$tmp/errd" ||
    { cat "$tmp/errd" >&2; fail "missing data: no message naming the path and the section"; }

# ---- a resume_ckpt that does not exist: a configuration error, before anything is written ------
"$SIMMIMCTL" run "$tmp/tiny.yaml" --options output_dir=nockpt train_config.resume_ckpt=missing.safetensors \
    >/dev/null 2>"$tmp/errc"
rc=$?
[ "$rc" = 2 ] || fail "missing resume_ckpt: exit $rc, want 2"
grep -q "train_config.resume_ckpt: .*missing.safetensors: No such file or directory" "$tmp/errc" ||
    { cat "$tmp/errc" >&2; fail "missing resume_ckpt: no message naming the key and the file"; }
{ [ -e "$tmp/nockpt" ] || [ -e nockpt ]; } && fail "missing resume_ckpt: the output directory was created"

# ---- Ctrl-C: checkpoint, exit 1; the same command resumes ---------------------------------------
sed -e 's/epoch: 2,/epoch: 1000,/' -e 's/per_epoch_size: 3/per_epoch_size: 50/' \
    -e 's/output_dir: out/output_dir: long/' "$tmp/tiny.yaml" >"$tmp/long.yaml"
"$SIMMIMCTL" run "$tmp/long.yaml" >/dev/null 2>"$tmp/err1" &
pid=$!
i=0
until grep -q "step [0-9]*/50" "$tmp/err1" 2>/dev/null || [ $i -ge 600 ]; do sleep 0.1; i=$((i + 1)); done
kill -INT "$pid"
wait "$pid"
rc=$?
[ "$rc" = 1 ] || fail "SIGINT: exit $rc, want 1"
grep -q "stop requested" "$tmp/err1" || fail "SIGINT: no stop message"
grep -q '"status": "stopped"' "$tmp/long/summary.json" || fail "SIGINT: summary not 'stopped'"
ls "$tmp/long"/tiny-*.safetensors >/dev/null 2>&1 || fail "SIGINT: no checkpoint written"
ls "$tmp/long"/*.tmp* >/dev/null 2>&1 && fail "SIGINT: a temporary file was left"
steps1=$(grep -c '"event":"step"' "$tmp/long/metrics.jsonl")

"$SIMMIMCTL" run "$tmp/long.yaml" >/dev/null 2>"$tmp/err2" &
pid=$!
i=0
until grep -q "step [0-9]*/50" "$tmp/err2" 2>/dev/null || [ $i -ge 600 ]; do sleep 0.1; i=$((i + 1)); done
kill -INT "$pid"
wait "$pid"
grep -q "resuming from .*tiny-" "$tmp/err2" || { cat "$tmp/err2" >&2; fail "the second run did not resume"; }
steps2=$(grep -c '"event":"step"' "$tmp/long/metrics.jsonl")
[ "$steps2" -gt "$steps1" ] || fail "the resumed run did not add steps"
# the resumed run continues the step count
last=$(grep '"event":"step"' "$tmp/long/metrics.jsonl" | tail -n 1 | sed 's/.*"step":\([0-9]*\).*/\1/')
[ "$last" = "$((steps2 - 1))" ] || fail "step numbers do not continue across the resume ($last vs $steps2)"

# ---- a second run on a directory in use is refused ----------------------------------------------
"$SIMMIMCTL" run "$tmp/long.yaml" >/dev/null 2>"$tmp/err3" &
pid=$!
i=0
until grep -q "step [0-9]*/50" "$tmp/err3" 2>/dev/null || [ $i -ge 600 ]; do sleep 0.1; i=$((i + 1)); done
"$SIMMIMCTL" run "$tmp/long.yaml" >/dev/null 2>"$tmp/err4"
rc=$?
kill -INT "$pid"
wait "$pid"
[ "$rc" = 1 ] || fail "a second run on the same output_dir: exit $rc, want 1"
grep -q "another run (pid $pid) is using this output directory" "$tmp/err4" ||
    { cat "$tmp/err4" >&2; fail "a second run: no clear message"; }

# ---- kill -9 at random moments, also while checkpoints are written: every restart resumes ------
sed -e 's/epoch: 2,/epoch: 50,/' -e 's/batch_size: 8, image_size: 16, per_epoch_size: 3/batch_size: 32, image_size: 32, per_epoch_size: 4/' \
    -e 's/output_dir: out/output_dir: killed/' "$tmp/tiny.yaml" >"$tmp/killed.yaml"
for k in 1 2 3 4 5 6 7 8; do
    had=no
    ls "$tmp/killed"/tiny-*.safetensors >/dev/null 2>&1 && had=yes
    "$SIMMIMCTL" run "$tmp/killed.yaml" >/dev/null 2>"$tmp/kerr$k" &
    pid=$!
    sleep "0.$(( (k * 37) % 7 + 3 ))"
    kill -9 "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    # a round that found a checkpoint and got as far as training must have resumed from it
    if [ "$had" = yes ] && grep -q " step [0-9]*/" "$tmp/kerr$k" &&
       ! grep -q "resuming from" "$tmp/kerr$k"; then
        fail "kill -9 round $k: a run started over instead of resuming"
    fi
done
"$SIMMIMCTL" run "$tmp/killed.yaml" >/dev/null 2>"$tmp/kfinal"
rc=$?
[ "$rc" = 0 ] || { tail -5 "$tmp/kfinal" >&2; fail "after kill -9 rounds: exit $rc, want 0"; }
grep -q "done: 50 epochs, 200 steps" "$tmp/kfinal" || fail "after kill -9 rounds: the run did not complete"
ls "$tmp/killed"/*.tmp.* >/dev/null 2>&1 && fail "after kill -9 rounds: temporary files remain"
[ -s "$tmp/killed/tiny-50_200.safetensors" ] || fail "after kill -9 rounds: no final checkpoint"
# the interrupted rounds together did the work once: one record per optimizer step, each step
# once and in order, every line a whole JSON object
[ "$(grep -c '"event":"step"' "$tmp/killed/metrics.jsonl")" = 200 ] ||
    fail "after kill -9 rounds: not one step record per step"
grep '"event":"step"' "$tmp/killed/metrics.jsonl" | sed 's/.*"step":\([0-9]*\).*/\1/' >"$tmp/steps"
seq 0 199 | cmp -s - "$tmp/steps" || fail "after kill -9 rounds: step records not 0..199 in order"
grep -v '^{.*}$' "$tmp/killed/metrics.jsonl" | grep -q . && fail "metrics.jsonl has a partial line"
# and ended where an uninterrupted run ends, bit for bit (same config in another directory, so
# that the output_dir recorded in the checkpoint is the same)
mkdir "$tmp/straight" && cp "$tmp/killed.yaml" "$tmp/straight/"
"$SIMMIMCTL" run "$tmp/straight/killed.yaml" >/dev/null 2>"$tmp/kstraight" ||
    { tail -5 "$tmp/kstraight" >&2; fail "the uninterrupted run failed"; }
cmp -s "$tmp/straight/killed/tiny-50_200.safetensors" "$tmp/killed/tiny-50_200.safetensors" ||
    fail "after kill -9 rounds: the final checkpoint differs from an uninterrupted run's"
cmp -s "$tmp/straight/killed/recon-50.png" "$tmp/killed/recon-50.png" ||
    fail "after kill -9 rounds: recon-50.png differs from an uninterrupted run's"

[ "$failures" = 0 ] && echo "PASS: simmimctl run: outputs, Ctrl-C, resume, lock, kill -9 (bit-identical end)"
exit $((failures > 0))
