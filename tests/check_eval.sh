#!/bin/sh
# tests/check_eval.sh - `simmimctl eval CONFIG --checkpoint FILE` on a tiny fine-tuned ViT: it
# prints what the trainer's evaluation counted (eval-summary.json, eval-confusion.csv), is the
# same as `run` with task: eval, leaves the training run's files alone, and refuses bad usage
# (exit 2) and bad checkpoints (naming them). Then `simmimctl extract --block N` and `probe` on
# those blocks: the block is recorded, a block out of range is refused naming the range, and
# features of different blocks are not mixed.
set -u
: "${SIMMIMCTL:?run through make check}" "${SM_TEST_BUILDDIR:?}"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/simmim-eval-XXXXXX") || exit 99
trap 'rm -rf "$tmp"' EXIT
failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }
# ctl ARGS...: simmimctl in $tmp; stdout in $tmp/out, stderr in $tmp/err, status in $rc
ctl() {
    (cd "$tmp" && "$SIMMIMCTL" "$@") >"$tmp/out" 2>"$tmp/err"
    rc=$?
}
expect() { # RC TEXT WHAT: the status, and TEXT in stdout or stderr
    [ "$rc" = "$1" ] && grep -q -F -- "$2" "$tmp/out" "$tmp/err" ||
        { fail "$3: exit $rc (want $1), no '$2'"; sed 's/^/  | /' "$tmp/out" "$tmp/err" >&2; }
}
json() { # FILE KEY: a number of a flat JSON object, to two decimals
    sed -n "s/^ *\"$2\": \([-0-9.e]*\),*$/\1/p" "$1" | awk '{ printf "%.2f", $1 }'
}

mkdir "$tmp/img" && "$SM_TEST_BUILDDIR/mkimages" "$tmp/img" >/dev/null || exit 99
cp "${SM_TEST_SRCDIR:?}/run/tiny_finetune.yaml" "$tmp/ft.yaml" || exit 99
ctl run ft.yaml
expect 0 "done: 2 epochs, 6 steps" "the fine-tuning run"
ck=ft/ft-2_6.safetensors
sums=$(cd "$tmp/ft" && cat summary.json config.yaml confusion.csv | cksum)

# ---- eval: what it prints is what the evaluation counted ---------------------------------------
ctl eval ft.yaml --checkpoint "$ck"
expect 0 "eval: top-1 " "eval"
line=$(grep '^eval: top-1 ' "$tmp/out")
top1=$(echo "$line" | sed 's/^eval: top-1 \([0-9.]*\) %, top-5 \([0-9.]*\) %, mean class accuracy \([0-9.]*\) %.*/\1/')
top5=$(echo "$line" | sed 's/^eval: top-1 \([0-9.]*\) %, top-5 \([0-9.]*\) %, mean class accuracy \([0-9.]*\) %.*/\2/')
mca=$(echo "$line" | sed 's/^eval: top-1 \([0-9.]*\) %, top-5 \([0-9.]*\) %, mean class accuracy \([0-9.]*\) %.*/\3/')
for f in eval-config.yaml eval-summary.json eval-confusion.csv; do
    [ -s "$tmp/ft/$f" ] || fail "eval did not write ft/$f"
done
[ "$(json "$tmp/ft/eval-summary.json" eval_top1)" = "$top1" ] || fail "eval: top-1 $top1 is not eval-summary.json's"
[ "$(json "$tmp/ft/eval-summary.json" eval_top5)" = "$top5" ] || fail "eval: top-5 $top5 is not eval-summary.json's"
[ "$(json "$tmp/ft/eval-summary.json" eval_mean_class_top1)" = "$mca" ] ||
    fail "eval: mean class accuracy $mca is not eval-summary.json's"
grep -q '"task": "eval"' "$tmp/ft/eval-summary.json" || fail "eval-summary.json: not task eval"
# the confusion matrix (rows: true class, columns: predicted) gives the same top-1 and mean
awk -F, -v t="$top1" -v m="$mca" 'NR > 1 { n = 0; for (i = 2; i <= NF; i++) n += $i;
        right += $(NR); all += n; acc += $(NR) / n; k++ }
    END { if (sprintf("%.2f", 100 * right / all) != t || sprintf("%.2f", 100 * acc / k) != m) exit 1 }' \
    "$tmp/ft/eval-confusion.csv" || fail "eval-confusion.csv does not give top-1 $top1 and mean $mca"
[ "$(cd "$tmp/ft" && cat summary.json config.yaml confusion.csv | cksum)" = "$sums" ] ||
    fail "eval changed the training run's files"
# the long form gives the same numbers
ctl run ft.yaml --options task=eval train_config.resume_ckpt="$ck" output_dir=long
expect 0 "simmimctl run: done" "run with task: eval"
[ "$(json "$tmp/long/eval-summary.json" eval_top1)" = "$top1" ] &&
    [ "$(json "$tmp/long/eval-summary.json" eval_mean_class_top1)" = "$mca" ] ||
    fail "run with task: eval and eval differ"
ctl eval ft.yaml --checkpoint "$ck" --output-dir "other dir"
expect 0 "other dir/eval-confusion.csv" "eval --output-dir"
[ -s "$tmp/other dir/eval-summary.json" ] || fail "eval --output-dir: no eval-summary.json there"

# ---- eval: usage errors exit 2, bad checkpoints are named ---------------------------------------
ctl eval ft.yaml
expect 2 "--checkpoint FILE is required" "eval without --checkpoint"
ctl eval ft.yaml --checkpoint nosuch.safetensors
expect 2 "--checkpoint nosuch.safetensors: No such file or directory" "eval of a missing checkpoint"
ctl eval ft.yaml --checkpoint ft
expect 2 "--checkpoint ft: not a regular file" "eval of a directory"
ctl eval ft.yaml --checkpoint "$ck" --top 3
expect 2 "unknown option '--top'" "eval with an unknown option"
ctl eval ft.yaml ft.yaml --checkpoint "$ck"
expect 2 "unexpected argument" "eval with two configs"
ctl eval --checkpoint "$ck"
expect 2 "missing argument" "eval without a config"
ctl eval ft.yaml --checkpoint ft.yaml
expect 1 "ft.yaml" "eval of a file that is not a checkpoint"
ctl eval ft.yaml --checkpoint "$ck" --options model.embed_dim=32
expect 1 "$ck" "eval of a checkpoint of another model"
ctl eval ft.yaml --checkpoint "$ck" --options train_config.image_size=17
expect 2 "image_size" "eval with a broken config"

# ---- extract --block and probe -----------------------------------------------------------------
for b in 0 1 2; do
    for split in train eval; do
        ctl extract ft.yaml --checkpoint "$ck" --split $split --block $b --output b$b-$split.safetensors
        expect 0 "features after block $b" "extract --block $b --split $split"
    done
    ctl inspect "b$b-eval.safetensors"
    expect 0 "block: $b" "extract --block $b: the block in the metadata"
done
[ "$("$SM_TEST_BUILDDIR/stdump" "$tmp/b1-eval.safetensors" features 0)" != \
  "$("$SM_TEST_BUILDDIR/stdump" "$tmp/b2-eval.safetensors" features 0)" ] ||
    fail "extract: blocks 1 and 2 give the same features"
ctl extract ft.yaml --checkpoint "$ck" --block 3 --output b3.safetensors
expect 2 "block 3: backbone 'vit' has blocks 0..2" "extract --block 3"
[ -e "$tmp/b3.safetensors" ] && fail "extract --block 3 wrote a file"
ctl extract ft.yaml --checkpoint "$ck" --block -1
expect 2 "--block takes a block number" "extract --block -1"
ctl probe b2-train.safetensors b2-eval.safetensors --epochs 5 --backend ref
expect 0 "16 features after block 2, 3 classes" "probe on block 2"
ctl probe b1-train.safetensors b2-eval.safetensors --epochs 5 --backend ref
expect 1 "features of different blocks (1 and 2)" "probe on blocks 1 and 2"

[ "$failures" = 0 ] || exit 1
echo "PASS: eval prints the trainer's evaluation and refuses bad usage; extract --block and probe"
