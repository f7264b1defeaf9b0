#!/bin/sh
# The six RingMo configs shipped in configs/ run as shipped, full-size models included: each
# SimMIM pretraining config trains one step on a small JPEG dataset written by tests/mkimages,
# and its fine-tuning config starts from that checkpoint (ViT: the shared relative-position table
# copied into every block; Swin: window 6 at 192 px resized to window 7 at 224 px), trains one
# step and evaluates; `reconstruct` and `extract` run on those checkpoints. The overrides only point at the data, shrink the schedule to one step and
# name the output directory; model, optimizer and data keys are the shipped ones.
set -u
: "${SIMMIMCTL:?run through make check}" "${SM_TEST_SRCDIR:?}" "${SM_TEST_BUILDDIR:?}"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/simmim-ringmo-XXXXXX")
trap 'rm -rf "$tmp"' EXIT
failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }
configs="$SM_TEST_SRCDIR/../configs"

"$SM_TEST_BUILDDIR/mkimages" "$tmp" || { echo "FAIL: mkimages" >&2; exit 1; }
short="train_config.batch_size=2 train_config.epoch=1 train_config.per_epoch_size=1 lr_schedule.warmup_epochs=0"

# pair PRETRAIN_CONFIG PRETRAIN_DATA FINETUNE_CONFIG EXPECTED_LOAD_NOTE FEATURES
pair() {
    name=$(basename "$1" .yaml)
    "$SIMMIMCTL" run "$configs/$1" --options pretrain_dataset.data_path="$2" \
        pretrain_dataset.num_workers=1 output_dir="$tmp/pre" $short >/dev/null 2>"$tmp/$name.err"
    rc=$?
    [ "$rc" = 0 ] || { tail -3 "$tmp/$name.err" >&2; fail "$1: exit $rc"; return; }
    ckpt=$(ls "$tmp"/pre/*-1_1.safetensors 2>/dev/null)
    [ -n "$ckpt" ] || { fail "$1: no checkpoint"; return; }
    [ -s "$tmp/pre/recon-1.png" ] || fail "$1: no recon-1.png"
    # simmimctl reconstruct with the config and that checkpoint: 2 JPEGs, a 2-row figure
    "$SIMMIMCTL" reconstruct "$configs/$1" --checkpoint "$ckpt" --output "$tmp/fig.png" \
        "$tmp/aircas/img0.jpg" "$tmp/aircas/img1.jpg" >"$tmp/fig.out" 2>"$tmp/fig.err"
    rc=$?
    [ "$rc" = 0 ] || { cat "$tmp/fig.err" >&2; fail "$1: reconstruct: exit $rc"; }
    [ "$(grep -c '^.*img[01].jpg: loss [0-9.]* ([0-9]* of [0-9]* patches of 32 px masked)$' "$tmp/fig.out")" = 2 ] ||
        { cat "$tmp/fig.out" >&2; fail "$1: reconstruct: no loss line per image"; }
    S=$(sed -n 's/.*image_size: *\([0-9]*\).*/\1/p' "$configs/$1" | head -1)
    # panels of S px (not enlarged: S >= 128), 4-px gaps, a 22-px header row
    [ "$(od -An -tu1 -j16 -N8 "$tmp/fig.png" | tr -s ' ' | sed 's/^ //')" = \
        "0 0 $(( (4 * S + 20) / 256 )) $(( (4 * S + 20) % 256 )) 0 0 $(( (2 * S + 34) / 256 )) $(( (2 * S + 34) % 256 ))" ] ||
        fail "$1: reconstruct: the figure is not 4 x 2 panels of $S px"

    name=$(basename "$3" .yaml)
    "$SIMMIMCTL" run "$configs/$3" --options finetune_dataset.train_path="$tmp/cls/train" \
        finetune_dataset.eval_path="$tmp/cls/val" finetune_dataset.num_workers=1 \
        train_config.resume_ckpt="$ckpt" output_dir="$tmp/ft" $short >/dev/null 2>"$tmp/$name.err"
    rc=$?
    [ "$rc" = 0 ] || { tail -3 "$tmp/$name.err" >&2; fail "$3: exit $rc"; }
    grep -q "pretrained weights: .*$4" "$tmp/$name.err" ||
        { grep "pretrained" "$tmp/$name.err" >&2; fail "$3: the checkpoint was not loaded as expected ($4)"; }
    grep -q "eval after epoch 1: 6 images" "$tmp/$name.err" || fail "$3: no evaluation"
    ftck=$(ls "$tmp"/ft/*-1_1.safetensors 2>/dev/null)
    [ -n "$ftck" ] || { fail "$3: no checkpoint"; return; }
    # simmimctl extract: the pooled features of the 6 evaluation images with that checkpoint
    "$SIMMIMCTL" extract "$configs/$3" --checkpoint "$ftck" --output "$tmp/feat.safetensors" \
        --options finetune_dataset.train_path="$tmp/cls/train" finetune_dataset.eval_path="$tmp/cls/val" \
        finetune_dataset.num_workers=1 >"$tmp/feat.out" 2>"$tmp/feat.err" ||
        { cat "$tmp/feat.err" >&2; fail "$3: extract failed"; }
    grep -q "wrote .*feat.safetensors: 6 x $5 features (eval split of finetune_dataset)" "$tmp/feat.out" ||
        { cat "$tmp/feat.out" >&2; fail "$3: extract did not write 6 x $5 features"; }
    [ "$(grep -c 'cls/val/.*\.jpg$' "$tmp/feat.safetensors.names.txt")" = 6 ] || fail "$3: extract: no name per row"
    rm -rf "$tmp/pre" "$tmp/ft" # about 1 GB each
}

pair pretrain_simmim_swin_base_p4_w6_aircas_192_200ep.yaml "$tmp/aircas" \
    finetune_simmim_swin_base_p4_w7_nwpu_224_200ep.yaml "327 tensors loaded (0 copied from a shared tensor, 24 resized)" 1024
pair pretrain_simmim_vit_base_p16_aircas_224_200ep.yaml "$tmp/aircas" \
    finetune_simmim_vit_base_p16_nwpu20_224_100ep.yaml "195 tensors loaded (12 copied from a shared tensor, 0 resized)" 768
pair pretrain_simmim_swin_base_p4_w6_imagenet1k_192_100ep.yaml "$tmp/cls/train" \
    finetune_simmim_swin_base_p4_w7_imagenet1k_224_100ep.yaml "327 tensors loaded (0 copied from a shared tensor, 24 resized)" 1024

[ "$failures" = 0 ] && echo "PASS: the six RingMo configs pretrain and fine-tune from their checkpoints"
exit $((failures > 0))
