#!/bin/sh
# tests/check_layers.sh - libsimmim is built in layers (docs/architecture.md), lowest first:
#   base  config  registry  io  tensor  data  model  train  cli
# A file of core/<layer>/ may include the private headers of its own layer or a lower one
# ("<layer>/..._internal.h") and the public headers (simmim/*.h) of its own layer or a lower
# one; never a higher one. Public headers obey the same rule among themselves. One stated
# exception: core/registry/registry.c checks every kind's vtable and registers the built-in ref
# backend, so it sees the component headers of the layers above (backend.h, data.h, model.h,
# optim.h) and nothing else of theirs.
set -u
src=${SM_TEST_SRCDIR:-$(dirname "$0")}/..

rank() { # layer name -> rank
    case $1 in
    base) echo 0 ;; config) echo 1 ;; registry) echo 2 ;; io) echo 3 ;; tensor) echo 4 ;;
    data) echo 5 ;; model) echo 6 ;; train) echo 7 ;; cli) echo 8 ;; *) echo 99 ;;
    esac
}
public_layer() { # public header base name -> layer
    case $1 in
    common | comm | log | rng | version) echo base ;;
    config) echo config ;;
    registry | plugin) echo registry ;;
    io) echo io ;;
    tensor | ops | backend | params) echo tensor ;;
    data | image | loader) echo data ;;
    model) echo model ;;
    train | optim) echo train ;;
    simmim) echo cli ;;
    *) echo unknown ;;
    esac
}

fails=0
checked=0
fail() {
    echo "FAIL: $*"
    fails=$((fails + 1))
}

# every folder of core/ must be a known layer
for d in "$src"/core/*/; do
    l=$(basename "$d")
    [ "$(rank "$l")" -eq 99 ] && fail "core/$l/ is not a layer of docs/architecture.md"
done

# check FILE LAYER: its quoted includes
check_file() {
    f=$1
    own=$2
    r=$(rank "$own")
    rel=${f#"$src"/}
    grep -o '^#include "[^"]*"' "$f" | sed 's/^#include "//; s/"$//' | while read -r inc; do
        case $inc in
        simmim/*)
            h=$(basename "$inc" .h)
            l=$(public_layer "$h")
            if [ "$l" = unknown ]; then
                echo "FAIL: $rel includes $inc, a public header of no layer (add it to check_layers.sh)"
            elif [ "$(rank "$l")" -gt "$r" ]; then
                case "$rel:$h" in
                core/registry/registry.c:backend | core/registry/registry.c:data | \
                    core/registry/registry.c:model | core/registry/registry.c:optim) ;;
                *) echo "FAIL: $rel ($own) includes $inc of the higher layer $l" ;;
                esac
            fi
            ;;
        */*)
            l=${inc%%/*}
            if [ "$(rank "$l")" -eq 99 ]; then
                echo "FAIL: $rel includes $inc, not under a layer folder"
            elif [ "$(rank "$l")" -gt "$r" ]; then
                echo "FAIL: $rel ($own) includes $inc of the higher layer $l"
            fi
            ;;
        *)
            # same-folder includes only inside cli/ (cli.h) and nothing else
            [ "$own" = cli ] || [ "$own" = public ] ||
                echo "FAIL: $rel includes \"$inc\": name private headers by their layer (\"$own/...\")"
            ;;
        esac
    done
}

out=$(
    for f in $(find "$src/core" -name '*.[ch]' | sort); do
        rel=${f#"$src"/core/}
        check_file "$f" "${rel%%/*}"
    done
    for f in "$src"/include/simmim/*.h "$src"/include/simmim/*.h.in; do
        [ -f "$f" ] || continue
        h=$(basename "$f")
        h=${h%.in}
        check_file "$f" "$(public_layer "${h%.h}")"
    done
)
if [ -n "$out" ]; then
    printf '%s\n' "$out"
    fails=$((fails + $(printf '%s\n' "$out" | grep -c '^FAIL')))
fi
checked=$(find "$src/core" -name '*.[ch]' | wc -l)
echo "checked the includes of $checked files of core/ and the public headers"
[ "$fails" -eq 0 ] || exit 1
