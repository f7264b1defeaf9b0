#!/bin/sh
# tests/check_cli.sh - simmimctl as a user meets it: exit codes (0 ok, 1 runtime failure,
# 2 usage or config error), help and version, check-config on a good and a broken config (the
# broken one: five mistakes, five lines, exit 2), run, plugins, and that nothing is written.
# Components come from the fixture plugins (--no-plugins --plugin-dir), so the answers do not
# depend on which real plugins are built.
set -u
: "${SIMMIMCTL:?run through make check}" "${SM_TEST_SRCDIR:?}" "${SM_TEST_BUILDDIR:?}"

fails=0
tmp=$(mktemp -d "${TMPDIR:-/tmp}/simmim-cli-XXXXXX") || exit 99
trap 'rm -rf "$tmp"' EXIT INT TERM
fixtures=$SM_TEST_BUILDDIR/fixtures/plugins/.libs
configs=$SM_TEST_SRCDIR/../configs
good=$configs/pretrain_simmim_vit_base_p16_aircas_224_200ep.yaml
five=$SM_TEST_SRCDIR/configs/invalid/five_mistakes

fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

# run [ARGS...]: runs simmimctl in $work; output in $tmp/out, $tmp/err; status in $rc.
run() {
    (cd "$work" && "$SIMMIMCTL" "$@") >"$tmp/out" 2>"$tmp/err"
    rc=$?
}
expect_rc() { # WANT WHAT
    [ "$rc" -eq "$1" ] || { fail "$2: exit $rc, want $1"; sed 's/^/  stderr: /' "$tmp/err"; }
}
expect_in() { # FILE TEXT WHAT
    grep -qF -- "$2" "$1" || { fail "$3: no '$2' in $(basename "$1")"; sed 's/^/  | /' "$1"; }
}
# Nothing may appear in the working directory except what the test put there.
expect_untouched() { # WHAT
    extra=$(cd "$work" && ls -A | grep -v -x -e config.yaml)
    [ -z "$extra" ] || fail "$1: wrote into the working directory: $extra"
}

mkdir -m 700 "$tmp/fx" "$tmp/work" "$tmp/pl"
cp "$fixtures/sm_fx_ringmo.so" "$tmp/fx/" && chmod 755 "$tmp/fx/sm_fx_ringmo.so" || exit 99
work=$tmp/work
fx="--no-plugins --plugin-dir $tmp/fx"

# ---- dispatch, help, version ---------------------------------------------------------------
run version
expect_rc 0 "version"
expect_in "$tmp/out" "plugin ABI 1.2" "version"
run --version
expect_rc 0 "--version"
run --help
expect_rc 0 "--help"
expect_in "$tmp/out" "usage: simmimctl COMMAND" "--help"
expect_in "$tmp/out" "SIMMIM_SUBNORMALS=flush|keep" "--help lists the environment"
# SIMMIM_SUBNORMALS: flush (the default) or keep (IEEE); anything else is a usage error
for v in flush keep; do
    (cd "$work" && SIMMIM_SUBNORMALS=$v "$SIMMIMCTL" version) >"$tmp/out" 2>"$tmp/err"
    rc=$?
    expect_rc 0 "SIMMIM_SUBNORMALS=$v"
done
(cd "$work" && SIMMIM_SUBNORMALS=sometimes "$SIMMIMCTL" version) >"$tmp/out" 2>"$tmp/err"
rc=$?
expect_rc 2 "SIMMIM_SUBNORMALS=sometimes"
expect_in "$tmp/err" "SIMMIM_SUBNORMALS is 'sometimes': it must be 'flush'" "SIMMIM_SUBNORMALS=sometimes"
run
expect_rc 2 "no command"
run frobnicate
expect_rc 2 "unknown command"
expect_in "$tmp/err" "unknown command 'frobnicate'" "unknown command"
for cmd in run check-config plugins version; do
    run $cmd --help
    expect_rc 0 "$cmd --help"
    expect_in "$tmp/out" "usage: simmimctl $cmd" "$cmd --help"
done
run version extra
expect_rc 2 "version with an argument"
run check-config
expect_rc 2 "check-config without CONFIG"
expect_in "$tmp/err" "missing argument" "check-config without CONFIG"
run check-config a.yaml b.yaml
expect_rc 2 "check-config with two configs"
run check-config "$good" --frobnicate
expect_rc 2 "check-config with an unknown option"
expect_in "$tmp/err" "unknown option '--frobnicate'" "unknown option"
run check-config "$good" --options
expect_rc 2 "--options without key=value"
run plugins stray
expect_rc 2 "plugins with an argument"

# ---- check-config: a good config --------------------------------------------------------------
run check-config "$good" $fx
expect_rc 0 "check-config on a shipped config"
expect_in "$tmp/out" 'backbone: "vit"' "effective config"
expect_in "$tmp/out" "batch_size: 128" "effective config"
expect_in "$tmp/out" "reader: aircas" "effective config (defaults)"
[ "$(wc -l <"$tmp/err")" -eq 1 ] || fail "check-config on a good config: stderr is not one line"
# the file as given (by its tail after "..." when the tree's path is too long for an error record)
expect_in "$tmp/err" "/${good##*/}: ignored RingMo/MindSpore-only keys: " "ignored keys"
grep -q "^warning: " "$tmp/err" || fail "ignored keys: not a warning"
grep -q "base_config" "$tmp/out" && fail "the effective config still has base_config"
expect_untouched "check-config"
# the printed config is itself a valid config that prints the same
cp "$tmp/out" "$tmp/effective.yaml"
run check-config "$tmp/effective.yaml" $fx
expect_rc 0 "check-config on its own output"
cmp -s "$tmp/out" "$tmp/effective.yaml" || fail "the effective config does not round-trip"
# overrides are typed and validated like the file
run check-config "$good" $fx --options train_config.batch_size=64 model.depth=6 --options seed=7
expect_rc 0 "check-config with overrides"
expect_in "$tmp/out" "batch_size: 64" "override"
expect_in "$tmp/out" "seed: 7" "repeated --options"
# SimMIM's form: --opts KEY VALUE pairs, typed and validated the same way
run check-config "$good" $fx --opts train_config.batch_size 32 model.depth 4
expect_rc 0 "check-config with --opts"
expect_in "$tmp/out" "batch_size: 32" "--opts override"
expect_in "$tmp/out" "depth: 4" "second --opts pair"
run check-config "$good" $fx --opts train_config.batch_size
expect_rc 2 "--opts with a key and no value"
expect_in "$tmp/err" "--opts takes KEY VALUE pairs" "--opts with a key and no value"
run check-config "$good" $fx --opts train_config.batch_size x
expect_rc 2 "invalid --opts value"
expect_in "$tmp/err" "train_config.batch_size: expected an integer, got 'x'" "invalid --opts value"
run check-config "$good" $fx --options train_config.batch_size=abc
expect_rc 2 "invalid override"
expect_in "$tmp/err" "--options: train_config.batch_size: expected an integer, got 'abc'" \
    "invalid override"
# without the components, the config names what is missing
run check-config "$good" --no-plugins
expect_rc 2 "check-config without plugins"
expect_in "$tmp/err" "model.backbone: unknown backbone 'vit' (available: none)" "no plugins"
run check-config "$tmp/nonexistent.yaml"
expect_rc 2 "missing config"
expect_in "$tmp/err" "cannot read the config: No such file or directory" "missing config"

# ---- check-config and run: five mistakes, five lines, exit 2, nothing written ----------------
cp "$five/config.yaml" "$work/config.yaml"
for cmd in check-config run; do
    run $cmd config.yaml $fx
    expect_rc 2 "$cmd on five mistakes"
    cmp -s "$tmp/err" "$five/error" || {
        fail "$cmd on five mistakes: stderr differs from $five/error"
        diff "$five/error" "$tmp/err" | sed 's/^/  /'
    }
    [ "$(grep -c '^config.yaml:[0-9]*:[0-9]*: ' "$tmp/err")" -eq 5 ] ||
        fail "$cmd on five mistakes: not five file:line:col lines"
    [ -s "$tmp/out" ] && fail "$cmd on five mistakes: printed to stdout"
    expect_untouched "$cmd on five mistakes"
done
rm -f "$work/config.yaml"

# ---- run: a component that fails while the run is being set up leaves nothing behind ---------
run run "$good" $fx --options backend.name=ref output_dir=out
expect_rc 1 "run"
expect_in "$tmp/err" "fixture stand-in: computes nothing" "run"
expect_untouched "run (output_dir must not be created)"
run run "$good" $fx
expect_rc 1 "run with the fixture backend"
expect_in "$tmp/err" "the fixture backend 'blis' computes nothing" "run: backend failure"

# ---- plugins: components with their keys; refused plugins with the reason ---------------------
cp "$fixtures/sm_fx_good.so" "$tmp/pl/" && chmod 755 "$tmp/pl/sm_fx_good.so"
run plugins --no-plugins --plugin-dir "$tmp/pl"
expect_rc 0 "plugins"
expect_in "$tmp/out" "optimizer fx_opt" "plugins"
expect_in "$tmp/out" "file:    $(cd "$tmp/pl" && pwd -P)/sm_fx_good.so" "plugins: file"
expect_in "$tmp/out" "version: 1.2.3" "plugins: version"
expect_in "$tmp/out" "fixture optimizer" "plugins: description"
expect_in "$tmp/out" "momentum" "plugins: keys"
expect_in "$tmp/out" "[0,1)" "plugins: key range"
expect_in "$tmp/out" "backend ref" "plugins: built-in"
expect_in "$tmp/out" "refused plugins: 0" "plugins"
cp "$fixtures/sm_fx_abi_major.so" "$tmp/pl/" && chmod 755 "$tmp/pl/sm_fx_abi_major.so"
run plugins --no-plugins --plugin-dir "$tmp/pl"
expect_rc 1 "plugins with a refused plugin"
expect_in "$tmp/out" "refused plugins: 1" "plugins: refused"
expect_in "$tmp/out" "sm_fx_abi_major.so: plugin built for ABI 2.0, this simmim provides ABI 1.2" \
    "plugins: both ABI versions"
expect_in "$tmp/out" "optimizer fx_opt" "plugins: the good one still loads"
run plugins --no-plugins --core
expect_rc 0 "plugins --core"
expect_in "$tmp/out" "section train_config" "plugins --core"
expect_in "$tmp/out" "mask_ratio" "plugins --core"

if [ "$fails" -ne 0 ]; then
    echo "check_cli: $fails failure(s)"
    exit 1
fi
echo "check_cli: all passed"
