#!/bin/sh
# The shipped pretraining configs (ViT-B and Swin-B at full size) run under `mpirun -np 2` for
# two steps of the global batch 2 (1 image per rank) on the small JPEG dataset of
# tests/mkimages: exit 0, both ranks in the job, gradients summed in buckets while backward
# runs, one checkpoint and one metrics.jsonl with the two steps. About 3 minutes and 4 GB on 2
# cores, so it runs only when SM_TEST_MPI_FULL=1 (.ci/mpi-stage sets it); it skips (77) in a
# build without MPI or without that variable (a missing mpirun fails).
set -u
: "${SIMMIMCTL:?run through make check}" "${SM_TEST_SRCDIR:?}" "${SM_TEST_BUILDDIR:?}"
"$SIMMIMCTL" version | grep -q "^MPI: not built in" && { echo "SKIP: built without MPI"; exit 77; }
command -v mpirun >/dev/null 2>&1 || { echo "FAIL: built with MPI but mpirun is missing: install openmpi-bin" >&2; exit 1; }
[ "${SM_TEST_MPI_FULL:-0}" = 1 ] || { echo "SKIP: set SM_TEST_MPI_FULL=1 (about 3 minutes)"; exit 77; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/simmim-mpifull-XXXXXX")
trap 'rm -rf "$tmp"' EXIT
failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }
configs="$SM_TEST_SRCDIR/../configs"
"$SM_TEST_BUILDDIR/mkimages" "$tmp" >/dev/null || { echo "FAIL: mkimages" >&2; exit 1; }

# full CONFIG DATA: two steps on 2 ranks
full() {
    name=$(basename "$1" .yaml)
    mpirun --oversubscribe --allow-run-as-root -x SIMMIM_PLUGIN_PATH -np 2 "$SIMMIMCTL" run \
        "$configs/$1" --options pretrain_dataset.data_path="$2" pretrain_dataset.num_workers=1 \
        output_dir="$tmp/out" train_config.batch_size=1 train_config.epoch=1 \
        train_config.per_epoch_size=2 lr_schedule.warmup_epochs=0 >"$tmp/$name.log" 2>&1
    rc=$?
    [ "$rc" = 0 ] || { tail -5 "$tmp/$name.log" >&2; fail "$1: exit $rc"; return; }
    grep -q "data parallel: 2 ranks (Open MPI.*), global batch 2 = 1 x 2 ranks x 1" "$tmp/$name.log" ||
        fail "$1: the log does not say that 2 ranks run"
    grep -q "gradients summed over 2 ranks in [0-9]* buckets .*, while backward runs" "$tmp/$name.log" ||
        fail "$1: the gradients are not summed in buckets during backward"
    [ "$(ls "$tmp"/out/*-1_2.safetensors 2>/dev/null | wc -l)" = 1 ] || fail "$1: not one checkpoint"
    [ "$(grep -c '"event":"step"' "$tmp/out/metrics.jsonl")" = 2 ] || fail "$1: not two steps in metrics.jsonl"
    grep -h "model: \|gradients summed over\|gradient sums over" "$tmp/$name.log"
    rm -rf "$tmp/out" # about 1 GB
}
full pretrain_simmim_vit_base_p16_aircas_224_200ep.yaml "$tmp/aircas"
full pretrain_simmim_swin_base_p4_w6_aircas_192_200ep.yaml "$tmp/aircas"
full pretrain_simmim_swin_base_p4_w6_imagenet1k_192_100ep.yaml "$tmp/cls/train"

[ "$failures" = 0 ] && echo "PASS: the pretraining configs run at full size on 2 ranks"
exit $((failures > 0))
