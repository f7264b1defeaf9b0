#!/bin/sh
# Data-parallel training under MPI (docs/scaling.md), on a two-block ViT of width 16 with drop
# path, Fashion-MNIST and the ref backend (exact double-accumulating GEMMs):
#  - simmimctl version says that MPI is in, the run log how many ranks run;
#  - the same global batch of 8 as 1 rank x 8, 2 ranks x 4, 4 ranks x 2, 2 ranks x 2 x 2
#    accumulation steps, 1 rank x 4 x 2, and 2 ranks x 4 with recomputation and buckets of 64
#    floats (most started while backward runs): the same losses and weights within float32
#    round-off (each |a - b| <= 1e-6 + 1e-5 |a|, Adam moments included; losses within 1e-6), and
#    only rank 0 writes (one metrics.jsonl, one set of checkpoints: the 1-rank run's files); the
#    same under step_semantics ringmo (2 ranks x 2 x 2 vs 1 rank x 8) and with accumulation_mode
#    official (2 ranks x 2 x 2 vs 1 rank x 4 x 2);
#  - a stop (SIGUSR1 to mpirun, or Ctrl-C: SIGINT with odls_base_sigkill_timeout 4 s, with ranks
#    that log little and ranks that fill the pipe mpirun stops reading) mid-epoch
#    writes one checkpoint; the same command resumes to the uninterrupted run's weights bit for bit; resuming it with 1 rank x 8 or 4 ranks x 2 gives
#    them within the tolerance; another global batch is refused naming the key;
#  - sharded evaluation: the same top-1 and confusion matrix with 1, 2 and 3 ranks; a bad image is
#    skipped once and reported once, too many stop every rank alike;
#  - failures end the whole job, non-zero, naming the rank, within 60 s: a rank killed with
#    SIGKILL, a rank that hangs (SIGSTOP; SIMMIM_COMM_TIMEOUT=3), a bad config on one rank, another
#    config on one rank (naming the first key; loader workers and threads may differ), data
#    missing on one rank.
# Skips (77) only when simmimctl was built without MPI (a missing mpirun fails). CI runs as
# root, hence --allow-run-as-root; --oversubscribe runs 4 ranks on 2 cores.
set -u
: "${SIMMIMCTL:?run through make check}" "${SM_TEST_BUILDDIR:?}"
"$SIMMIMCTL" version | grep -q "^MPI: not built in" && { echo "SKIP: built without MPI"; exit 77; }
command -v mpirun >/dev/null 2>&1 || { echo "FAIL: built with MPI but mpirun is missing: install openmpi-bin" >&2; exit 1; }
[ -r /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ] ||
    { echo "FAIL: Fashion-MNIST is missing: install dataset-fashion-mnist" >&2; exit 1; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/simmim-mpi-XXXXXX")
trap 'rm -rf "$tmp"' EXIT
cd "$tmp" || exit 1
failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }
MPIRUN="mpirun --oversubscribe --allow-run-as-root -x SIMMIM_PLUGIN_PATH"
DIFF=$SM_TEST_BUILDDIR/ckptdiff
TOL="1e-6 1e-5"

cat >tiny.yaml <<EOF
seed: 1
task: pretrain
output_dir: out
model: {backbone: vit, patch_size: 4, in_chans: 1, embed_dim: 16, depth: 2, num_heads: 2,
        mask_patch_size: 8, drop_path_rate: 0.2}
train_config: {epoch: 2, batch_size: 8, image_size: 16, per_epoch_size: 3}
pretrain_dataset: {reader: idx, num_workers: 1, norm_mean: [0.286], norm_std: [0.353]}
lr_schedule: {lr_type: warmup_cosine_decay_simmim, base_lr: 1e-3, warmup_epochs: 0}
callback: {ckpt_config: {prefix: tiny, keep_checkpoint_max: 2}}
backend: {name: ref}
EOF

# run NAME NP BATCH ACCUM [KEY=VALUE...]: the tiny run on NP ranks into $tmp/NAME (BUCKET=n
# before it: buckets of n floats, SIMMIM_COMM_BUCKET)
run() {
    name=$1 np=$2 b=$3 a=$4
    shift 4
    $MPIRUN -x SIMMIM_COMM_BUCKET="${BUCKET:-0}" -np "$np" "$SIMMIMCTL" run tiny.yaml --options output_dir="$tmp/$name" \
        train_config.batch_size="$b" train_config.accumulation_steps="$a" \
        train_config.per_epoch_size=$((3 * a)) "$@" >"$name.log" 2>&1
}
# the step losses of a run, one per line
losses() { sed -n 's/.*"event":"step".*"loss":\([-0-9.e]*\).*/\1/p' "$1/metrics.jsonl"; }
# same_losses A B: every step's loss within 1e-6
same_losses() {
    losses "$1" >"$1.loss" && losses "$2" >"$2.loss"
    [ "$(wc -l <"$1.loss")" = 6 ] && [ "$(wc -l <"$2.loss")" = 6 ] &&
        paste "$1.loss" "$2.loss" | awk '{ d = $1 - $2; if (d < 0) d = -d; if (d > 1e-6) exit 1 }'
}

# ---- the same global batch, split six ways -----------------------------------------------------
"$SIMMIMCTL" version | grep -q "^MPI: Open MPI v[0-9.]* (data-parallel: mpirun -np N simmimctl run)" ||
    fail "simmimctl version does not say that MPI is built in"
# same_run REF NAME NP BATCH ACCUM: NAME's weights and losses are REF's within the tolerance
same_run() {
    "$DIFF" "$1/tiny-2_6.safetensors" "$2/tiny-2_6.safetensors" $TOL >"$2.diff" ||
        { cat "$2.diff" >&2; fail "$2 ($3 ranks x $4 x $5): weights differ from $1"; }
    same_losses "$1" "$2" || { paste "$1.loss" "$2.loss" >&2; fail "$2: losses differ from $1"; }
}
run r1 1 8 1 || { tail -5 r1.log >&2; fail "1 rank x 8: exit $?"; }
# r2k: buckets of 64 floats (many buckets, most started while backward runs: one started before
# its gradients are final would change the weights), with recomputation of the blocks
for layout in "r2 2 4 1" "r4 4 2 1" "r2a 2 2 2" "r1a 1 4 2" "r2k 2 4 1 train_config.recompute=true"; do
    set -- $layout
    case $1 in r2k) export BUCKET=64 ;; *) unset BUCKET ;; esac
    run "$@" || { tail -5 "$1.log" >&2; fail "$1 ($2 ranks x $3 x $4): exit status not 0"; continue; }
    same_run r1 "$1" "$2" "$3" "$4"
    [ "$(cd "$1" && ls -A | tr '\n' ' ')" = "$(cd r1 && ls -A | tr '\n' ' ')" ] ||
        fail "$1: its output directory holds other files than the 1-rank run's: $(ls -A "$1")"
done
unset BUCKET
grep -q "in [0-9][0-9] buckets of about 64 floats" r2k.log || fail "r2k: not many buckets"
early=$(sed -n 's/.* \([0-9]*\) of \([0-9]*\) buckets so far started while backward ran/\1 \2/p' r2k.log | tail -1)
[ -n "$early" ] && [ "${early% *}" -gt "$(( ${early#* } / 2 ))" ] ||
    fail "r2k: fewer than half the buckets started while backward ran ($early)"
# a model of more parameter tensors (depth 6: 99) than reductions can be in flight (64), with
# buckets of one float: fewer, larger buckets, the same weights as one bucket
export BUCKET=1
run d1 2 4 1 model.depth=6 || { tail -3 d1.log >&2; fail "depth 6, 1-float buckets: exit status not 0"; }
unset BUCKET
run d0 2 4 1 model.depth=6 || fail "depth 6: exit status not 0"
"$DIFF" d0/tiny-2_6.safetensors d1/tiny-2_6.safetensors >d1.diff ||
    { cat d1.diff >&2; fail "depth 6: 1-float buckets give other weights than one bucket"; }
n=$(sed -n 's/.*summed over 2 ranks in \([0-9]*\) buckets.*/\1/p' d1.log | head -1)
[ -n "$n" ] && [ "$n" -le 64 ] && [ "$n" -gt 1 ] || fail "depth 6, 1-float buckets: '$n' buckets (want 2 to 64)"
# accumulation_mode official (the sum after every micro-batch, each partial sum clipped): 2 ranks
# x 2 x 2 as 1 rank x 4 x 2 (the same micro-batches of 4 over the ranks)
run o1 1 4 2 train_config.accumulation_mode=official || fail "official, 1 rank x 4 x 2: exit status not 0"
run o2 2 2 2 train_config.accumulation_mode=official || fail "official, 2 ranks x 2 x 2: exit status not 0"
same_run o1 o2 2 2 2
# the global batch under step_semantics ringmo (device_num x batch / 512, times accumulation):
# 2 ranks x 2 x 2 accumulation steps as 1 rank x 8
run q1 1 8 1 step_semantics=ringmo || fail "ringmo, 1 rank x 8: exit status not 0"
run q2 2 2 2 step_semantics=ringmo || fail "ringmo, 2 ranks x 2 x 2: exit status not 0"
same_run q1 q2 2 2 2
grep -q "learning rates x 0.015625 (global batch 8 = 2 x 2 ranks x 2 / 512)" q2.log ||
    fail "ringmo: the learning rates are not scaled by the global batch of 2 x 2 ranks x 2"
grep -q "one process (MPI built in; mpirun -np N simmimctl run for N ranks)" r1.log ||
    fail "the 1-rank log does not say that MPI is built in"
grep -q "data parallel: 2 ranks (.*MPI.*), global batch 8 = 4 x 2 ranks x 1" r2.log ||
    fail "the log does not say that 2 ranks run"
grep -q "learning rates x 0.015625 (global batch 8 = 2 x 2 ranks x 2 / 512)" r2a.log ||
    fail "the learning rates are not scaled by the global batch of 2 x 2 ranks x 2"
grep -q '"ranks": 4' r4/summary.json || fail "summary.json does not record 4 ranks"
ls ./*.safetensors ./metrics.jsonl out 2>/dev/null && fail "a rank wrote into the working directory"

# ---- stop and resume -----------------------------------------------------------------------------
long="train_config.epoch=1 train_config.per_epoch_size=60"
run u2 2 4 1 $long || fail "uninterrupted 2-rank run: exit status not 0"
# stop: SIGUSR1 to mpirun (forwarded to every rank) once a few steps are done
$MPIRUN -np 2 "$SIMMIMCTL" run tiny.yaml --options output_dir="$tmp/s2" train_config.batch_size=4 \
    $long >s2.log 2>&1 &
pid=$!
i=0
until [ "$(cat s2/metrics.jsonl 2>/dev/null | grep -c '"event":"step"')" -ge 3 ] || [ $i -ge 600 ]; do
    sleep 0.05
    i=$((i + 1))
done
kill -USR1 "$pid"
wait "$pid"
rc=$?
ck=$(ls s2/tiny-0_*.safetensors 2>/dev/null)
if [ "$rc" != 1 ] || [ -z "$ck" ]; then
    tail -5 s2.log >&2
    fail "SIGUSR1 to mpirun: exit $rc (want 1) and checkpoint '$ck' (want one mid-epoch)"
else
    [ "$(grep -c 'stop requested: saving a checkpoint' s2.log)" = 2 ] ||
        fail "SIGUSR1: not both ranks stopped at the same step"
    grep -q '"status": "stopped"' s2/summary.json || fail "SIGUSR1: summary.json not 'stopped'"
    cp -r s2 s1 && cp -r s2 s4
    # the same command: bit for bit the uninterrupted run
    $MPIRUN -np 2 "$SIMMIMCTL" run tiny.yaml --options output_dir="$tmp/s2" train_config.batch_size=4 \
        $long >s2b.log 2>&1 || { tail -5 s2b.log >&2; fail "resume with 2 ranks: exit status not 0"; }
    grep -q "resuming from .*tiny-0_" s2b.log || fail "the 2-rank run did not resume"
    "$DIFF" u2/tiny-1_60.safetensors s2/tiny-1_60.safetensors >s2.diff ||
        { cat s2.diff >&2; fail "stopped and resumed on 2 ranks: not bit-identical to the uninterrupted run"; }
    # another split of the same global batch: within the tolerance
    $MPIRUN -np 1 "$SIMMIMCTL" run tiny.yaml --options output_dir="$tmp/s1" train_config.batch_size=8 \
        $long >s1.log 2>&1 || { tail -5 s1.log >&2; fail "resume with 1 rank x 8: exit status not 0"; }
    "$DIFF" u2/tiny-1_60.safetensors s1/tiny-1_60.safetensors $TOL >s1.diff ||
        { cat s1.diff >&2; fail "resumed with 1 rank x 8: weights differ"; }
    $MPIRUN -np 4 "$SIMMIMCTL" run tiny.yaml --options output_dir="$tmp/s4" train_config.batch_size=2 \
        $long >s4.log 2>&1 || { tail -5 s4.log >&2; fail "resume with 4 ranks x 2: exit status not 0"; }
    "$DIFF" u2/tiny-1_60.safetensors s4/tiny-1_60.safetensors $TOL >s4.diff ||
        { cat s4.diff >&2; fail "resumed with 4 ranks x 2: weights differ"; }
fi
# Ctrl-C: SIGINT to mpirun, which sends SIGTERM to the ranks odls_base_sigkill_timeout seconds
# later and SIGKILL as long after that; with time enough both stop after one checkpoint (the
# resume from such a checkpoint is tested above). Rank 0 notes the time at the start (Open MPI's
# default is 1 s). mpirun reads none of the ranks' output from the Ctrl-C on: with epochs of 3
# steps (many log lines; "chatty") rank 0 fills the pipe within the 4 s and, before simmimctl made
# stderr non-blocking on SIGTERM, stayed blocked in a log write until SIGKILL (seen 6 times in 6).
# With epochs of 1000 steps (a line per 50) both ranks' last words get through.
grep -q "note: Ctrl-C on mpirun gives the ranks 1 s between SIGTERM and SIGKILL" r2.log ||
    fail "2 ranks: no note on Ctrl-C under mpirun's default kill timeout"
# ctrl_c NAME PER_EPOCH: Ctrl-C on a 2-rank run into $tmp/NAME; checks one clean stop
ctrl_c() {
    OMPI_MCA_odls_base_sigkill_timeout=4 $MPIRUN -np 2 "$SIMMIMCTL" run tiny.yaml --options \
        output_dir="$tmp/$1" train_config.batch_size=4 train_config.epoch=1000 \
        train_config.per_epoch_size="$2" >"$1.log" 2>&1 &
    pid=$!
    i=0
    until [ "$(cat "$1/metrics.jsonl" 2>/dev/null | grep -c '"event":"step"')" -ge 3 ] || [ $i -ge 600 ]; do
        sleep 0.05
        i=$((i + 1))
    done
    kill -INT "$pid"
    wait "$pid"
    rc=$?
    last=$(ls "$1"/tiny-*.safetensors 2>/dev/null | sort -t_ -k2 -n | tail -1)
    grep -q "note: Ctrl-C on mpirun gives the ranks 4 s between" "$1.log" ||
        fail "SIGINT to mpirun ($1): no note of the 4 s kill timeout"
    [ "$rc" != 0 ] || fail "SIGINT to mpirun ($1): exit 0 (want non-zero)"
    { grep -q '"status": "stopped"' "$1/summary.json" 2>/dev/null &&
        grep -q "\"checkpoint\": \".*/$(basename "$last")\"" "$1/summary.json"; } ||
        { tail -4 "$1.log" >&2; fail "SIGINT to mpirun ($1): no summary.json saying stopped at the newest checkpoint"; }
    { [ -n "$last" ] && "$DIFF" "$last" "$last" $TOL >/dev/null; } ||
        fail "SIGINT to mpirun ($1): the newest checkpoint '$last' does not load whole"
    ls "$1" | grep -q -v -E '^(config\.yaml|metrics\.jsonl|recon-[0-9]+\.png|tiny-[0-9]+_[0-9]+\.safetensors|summary\.json|\.lock)$' &&
        { ls "$1" >&2; fail "SIGINT to mpirun ($1): a stray (temporary?) file was left in the run directory"; }
}
ctrl_c i2 1000
[ "$(grep -c -E 'rank [01] of 2: stopped (at|after) epoch' i2.log)" = 2 ] ||
    { tail -4 i2.log >&2; fail "SIGINT to mpirun: not both ranks said where they stopped"; }
ctrl_c i3 3
# another global batch is refused, naming what changed
cp -r r2 r2x
$MPIRUN -np 1 "$SIMMIMCTL" run tiny.yaml --options output_dir="$tmp/r2x" train_config.batch_size=4 \
    train_config.epoch=3 >r2x.log 2>&1
rc=$?
[ "$rc" = 2 ] && grep -q "the number of ranks: the global batch .* changed from 8 (4 x 2 ranks x 1) to 4 (4 x 1 ranks x 1)" r2x.log ||
    { tail -3 r2x.log >&2; fail "another global batch: exit $rc (want 2) or no message naming it"; }

# ---- sharded evaluation, bad images ----------------------------------------------------------------
mkdir img && "$SM_TEST_BUILDDIR/mkimages" img >/dev/null || fail "mkimages"
printf 'not a jpeg' >img/cls/val/beach/broken.jpg
cat >ft.yaml <<EOF
seed: 2
task: finetune
output_dir: ft
model: {backbone: vit, patch_size: 8, embed_dim: 16, depth: 1, num_heads: 2}
train_config: {epoch: 1, batch_size: 2, image_size: 32, per_epoch_size: 1}
finetune_dataset: {reader: imagenet, train_path: img/cls/train, eval_path: img/cls/val,
                   num_workers: 1, max_bad_fraction: 0.5, auto_augment: null, mixup: 0, cutmix: 0}
lr_schedule: {lr_type: warmup_cosine_decay_simmim, base_lr: 1e-3, warmup_epochs: 0}
callback: {ckpt_config: {prefix: ft}}
backend: {name: ref}
EOF
$MPIRUN -np 1 "$SIMMIMCTL" run ft.yaml >ft.log 2>&1 || { tail -5 ft.log >&2; fail "fine-tuning: exit status not 0"; }
for np in 1 2 3; do
    $MPIRUN -np $np "$SIMMIMCTL" run ft.yaml --options task=eval output_dir="$tmp/ev$np" \
        train_config.resume_ckpt="$tmp/ft/ft-1_1.safetensors" >"ev$np.log" 2>&1 ||
        { tail -5 "ev$np.log" >&2; fail "evaluation on $np ranks: exit status not 0"; continue; }
    grep -o '"images":[0-9]*,"top1":[0-9.e-]*' "ev$np/metrics.jsonl" >"ev$np.top1"
    [ "$(grep -c 'broken.jpg' "ev$np/bad_images.txt" 2>/dev/null)" = 1 ] ||
        [ "$(grep -c 'skipping bad image: .*broken.jpg' "ev$np.log")" = 1 ] ||
        fail "evaluation on $np ranks: the bad image is not reported exactly once"
done
grep -q '"images":6,' ev1.top1 || fail "evaluation: not 6 images counted"
for np in 2 3; do
    cmp -s ev1.top1 "ev$np.top1" || fail "evaluation on $np ranks: $(cat "ev$np.top1"), 1 rank: $(cat ev1.top1)"
    cmp -s ev1/eval-confusion.csv "ev$np/eval-confusion.csv" || fail "evaluation on $np ranks: another confusion matrix"
done
# more bad images than max_bad_fraction: every rank stops with the same error, no MPI_Abort
$MPIRUN -np 2 "$SIMMIMCTL" run ft.yaml --options task=eval output_dir="$tmp/evbad" \
    finetune_dataset.max_bad_fraction=0.01 train_config.resume_ckpt="$tmp/ft/ft-1_1.safetensors" >evbad.log 2>&1
rc=$?
[ "$rc" = 1 ] && [ "$(grep -c 'rank [01] of 2: .*max_bad_fraction' evbad.log)" = 2 ] &&
    ! grep -q MPI_ABORT evbad.log ||
    { tail -8 evbad.log >&2; fail "too many bad images on 2 ranks: exit $rc, want 1 from both ranks alike"; }

# ---- failures end the job, naming the rank -------------------------------------------------------
# wait_bounded LOG: waits at most 60 s for the job started by `started` to end, else kills it;
# sets rc to its exit status, or "hung"
started() { # LOG COMMAND...: runs the command in the background, its pid in LOG.pid
    log=$1
    shift
    ("$@" >"$log" 2>&1 &
     echo $! >"$log.pid"
     wait $!
     echo "job-done $?" >"$log.rc") &
}
wait_bounded() {
    i=0
    until [ -s "$1.rc" ] || [ $i -ge 600 ]; do sleep 0.1; i=$((i + 1)); done
    [ -s "$1.rc" ] || { kill -9 "$(cat "$1.pid")"; rc=hung; return; }
    rc=$(sed 's/job-done //' "$1.rc")
}
# rank_pid R: the pid of rank R of the running job
rank_pid() {
    for p in $(pgrep -f "simmimctl run tiny.yaml"); do
        tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -qx "OMPI_COMM_WORLD_RANK=$1" && echo "$p"
    done | head -1
}
endless="train_config.epoch=1000 train_config.per_epoch_size=50"
for how in KILL STOP; do
    rm -rf "$tmp/f"
    started "f$how.log" $MPIRUN -x SIMMIM_COMM_TIMEOUT=3 -np 2 "$SIMMIMCTL" run tiny.yaml \
        --options output_dir="$tmp/f" train_config.batch_size=4 $endless
    i=0
    until [ "$(cat f/metrics.jsonl 2>/dev/null | grep -c '"event":"step"')" -ge 2 ] || [ $i -ge 600 ]; do
        sleep 0.05
        i=$((i + 1))
    done
    victim=$(rank_pid 1)
    [ -n "$victim" ] && kill -"$how" "$victim"
    wait_bounded "f$how.log"
    [ -n "$victim" ] && kill -9 "$victim" 2>/dev/null
    case $how in
    KILL) want="process rank 1 .* exited on signal 9" ;;
    STOP) want="rank 0 of 2: waited [0-9]* s for the other ranks" ;;
    esac
    { [ "$rc" != 0 ] && [ "$rc" != hung ] && grep -q "$want" "f$how.log"; } ||
        { tail -5 "f$how.log" >&2; fail "SIG$how of rank 1: exit '$rc' within 60 s (want non-zero), message '$want'"; }
done
# a bad config on rank 1 only (MPMD): exit 2, the key named by rank 1, nothing written
sed 's/depth: 2,/depth: 2, dept: 3,/' tiny.yaml >bad.yaml
$MPIRUN -np 1 "$SIMMIMCTL" run tiny.yaml --options output_dir="$tmp/b" : \
    -np 1 "$SIMMIMCTL" run bad.yaml --options output_dir="$tmp/b" >b.log 2>&1
rc=$?
[ "$rc" = 2 ] && grep -q "rank 1 of 2: bad.yaml:.*model.dept: unknown key" b.log ||
    { tail -5 b.log >&2; fail "a bad config on rank 1: exit $rc, want 2 and its message"; }
[ -e b ] && fail "a bad config on rank 1: the output directory was created"
# another config on rank 1 (MPMD): exit 2 from both ranks, rank 1 names the first key that
# differs; the keys a rank may set for itself (loader workers, threads) are not compared
$MPIRUN -np 1 "$SIMMIMCTL" run tiny.yaml --options output_dir="$tmp/c" : -np 1 "$SIMMIMCTL" run \
    tiny.yaml --options output_dir="$tmp/c" train_config.batch_size=4 >c.log 2>&1
rc=$?
[ "$rc" = 2 ] && grep -q "error: rank 1 (.*) runs another configuration than rank 0: at train_config.batch_size, 'batch_size: 4' here and 'batch_size: 8' on rank 0" c.log &&
    grep -q "rank 0 of 2: .*1 rank(s) run another configuration than rank 0" c.log &&
    ! grep -q '"event":"step"' c/metrics.jsonl 2>/dev/null ||
    { tail -5 c.log >&2; fail "another config on rank 1: exit $rc, want 2, the key named and no step"; }
[ -e c ] && fail "another config on rank 1: the output directory was left behind"
$MPIRUN -np 1 "$SIMMIMCTL" run tiny.yaml --options output_dir="$tmp/l" : -np 1 "$SIMMIMCTL" run \
    tiny.yaml --options output_dir="$tmp/l" pretrain_dataset.num_workers=2 backend.threads=1 >l.log 2>&1 ||
    { tail -5 l.log >&2; fail "other loader workers and threads on rank 1: exit status not 0"; }
# data missing on rank 1 only: every rank stops, naming rank 1
$MPIRUN -np 1 "$SIMMIMCTL" run tiny.yaml --options output_dir="$tmp/m" : -np 1 "$SIMMIMCTL" run \
    tiny.yaml --options output_dir="$tmp/m" pretrain_dataset.data_path="$tmp/none" >m.log 2>&1
rc=$?
[ "$rc" = 1 ] && grep -q "rank 1 of 2: .*none.*No such file" m.log &&
    grep -q "rank 0 of 2: setting up failed on rank 1" m.log ||
    { tail -5 m.log >&2; fail "data missing on rank 1: exit $rc, want 1 and both messages"; }

[ "$failures" = 0 ] && echo "PASS: 1, 2 and 4 ranks agree; resume, evaluation and failures under MPI"
exit $((failures > 0))
