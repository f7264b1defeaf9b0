#!/bin/sh
# Builds the example backbone (docs/examples/toy_backbone) out of tree against the INSTALLED
# headers and `pkg-config simmim` (installed with DESTDIR into a temporary directory), loads it
# through the plugin path, and selects it by name from YAML.
set -eu
: "${SIMMIMCTL:?}" "${SM_TEST_SRCDIR:?}" "${SM_TOP_BUILDDIR:?}" "${MAKE:=make}"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/simmim-oot-XXXXXX")
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

# 1. install the library, its headers and simmim.pc into $tmp/root (the plugins are not
#    needed here, and installing them would relink files that concurrent tests are loading)
$MAKE -s -C "$SM_TOP_BUILDDIR" install-libLTLIBRARIES install-simmimincludeHEADERS \
    install-nodist_simmimincludeHEADERS install-pkgconfigDATA DESTDIR="$tmp/root" \
    >"$tmp/install.log" 2>&1 || { cat "$tmp/install.log" >&2; fail "make install DESTDIR=... failed"; }
pcdir=$(find "$tmp/root" -name simmim.pc -path '*pkgconfig*' -exec dirname {} \; | head -n 1)
[ -n "$pcdir" ] || fail "simmim.pc was not installed"
export PKG_CONFIG_PATH="$pcdir" PKG_CONFIG_SYSROOT_DIR="$tmp/root"
cflags=$(pkg-config --cflags simmim) || fail "pkg-config --cflags simmim"
libs=$(pkg-config --libs simmim) || fail "pkg-config --libs simmim"
case "$cflags" in *"$tmp/root"*) ;; *) fail "pkg-config does not point into the install: $cflags" ;; esac
[ -f "$tmp/root$(pkg-config --variable=includedir simmim | sed "s|^$tmp/root||")/simmim/simmim.h" ] ||
    fail "simmim/simmim.h not installed"

# 2. build the example against them, as a user would
mkdir -p "$tmp/plugins"
cc -std=gnu11 -O1 -Wall -Wextra -Werror -fPIC -shared -fvisibility=hidden \
    -o "$tmp/plugins/sm_toy.so" "$SM_TEST_SRCDIR/../docs/examples/toy_backbone/toy.c" \
    $cflags $libs -lm || fail "the example backbone does not build against the installed headers"
chmod 755 "$tmp/plugins" && chmod 644 "$tmp/plugins/sm_toy.so"
exports=$(nm -D --defined-only "$tmp/plugins/sm_toy.so" | awk '{print $3}' |
          grep -v -E '^(_init|_fini|_edata|_end|__bss_start)$' || true)
[ "$exports" = "simmim_plugin_describe" ] || fail "the example exports more than its entry: $exports"

# 3. load it through the plugin path and select it by name from YAML
"$SIMMIMCTL" plugins --plugin-dir "$tmp/plugins" >"$tmp/plugins.txt" 2>&1 ||
    { cat "$tmp/plugins.txt" >&2; fail "simmimctl plugins failed"; }
grep -q "toy" "$tmp/plugins.txt" || fail "simmimctl plugins does not list the toy backbone"
grep -q "embed_dim" "$tmp/plugins.txt" || fail "simmimctl plugins does not list the toy's keys"
cat >"$tmp/toy.yaml" <<YAML
plugin_path: ["plugins"]
model:
  backbone: toy
  patch_size: 8
  embed_dim: 32
  mask_patch_size: 16
train_config:
  image_size: 32
YAML
"$SIMMIMCTL" model "$tmp/toy.yaml" >"$tmp/check.txt" 2>&1 ||
    { cat "$tmp/check.txt" >&2; fail "the toy backbone selected from YAML did not run"; }
grep -q "backbone toy" "$tmp/check.txt" || { cat "$tmp/check.txt" >&2; fail "unexpected output"; }
# its block is a checkpoint: recomputed in backward, the same loss
"$SIMMIMCTL" model "$tmp/toy.yaml" --recompute >"$tmp/recompute.txt" 2>&1 ||
    { cat "$tmp/recompute.txt" >&2; fail "the toy backbone did not run with --recompute"; }
grep -q "recompute: on" "$tmp/recompute.txt" || fail "--recompute was not taken"
[ "$(grep -o 'loss [0-9.]*' "$tmp/check.txt")" = "$(grep -o 'loss [0-9.]*' "$tmp/recompute.txt")" ] ||
    { cat "$tmp/check.txt" "$tmp/recompute.txt" >&2; fail "another loss with --recompute"; }
# a key the toy does not declare is refused by name, with exit code 2
sed -i 's/^  embed_dim: 32/  embed_dim: 32\n  depth: 3/' "$tmp/toy.yaml"
set +e
"$SIMMIMCTL" model "$tmp/toy.yaml" >"$tmp/bad.txt" 2>&1
rc=$?
set -e
[ "$rc" = 2 ] || { cat "$tmp/bad.txt" >&2; fail "an unknown key gave exit code $rc, not 2"; }
grep -q "toy.yaml:[0-9]*:[0-9]*: model.depth: unknown key" "$tmp/bad.txt" ||
    { cat "$tmp/bad.txt" >&2; fail "no file:line:col message for the unknown key"; }

# 4. the plugin ABI 1.1 slot: fine-tuning weights in the toy's old names load through its
#    adapt_weight (a program built against the installed library, as an embedding user would)
sed -i '/^  depth: 3/d' "$tmp/toy.yaml"
cc -std=gnu11 -O1 -Wall -Wextra -Werror -o "$tmp/oot_adapt" "$SM_TEST_SRCDIR/oot_adapt.c" \
    $cflags $libs || fail "tests/oot_adapt.c does not build against the installed library"
libdir=$(pkg-config --variable=libdir simmim)
LD_LIBRARY_PATH="$tmp/root$(printf '%s' "$libdir" | sed "s|^$tmp/root||")" \
    "$tmp/oot_adapt" "$tmp/plugins" "$tmp/toy.yaml" "$tmp/old-names.safetensors" >"$tmp/adapt.txt" 2>&1 ||
    { cat "$tmp/adapt.txt" >&2; fail "adapt_weight of the out-of-tree backbone"; }
echo "PASS: example backbone built out of tree, loaded and selected; its adapt_weight slot works"
