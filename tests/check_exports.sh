#!/bin/sh
# tests/check_exports.sh - the library exports only its public prefix (sm_ but not sm__), and
# every plugin only its entry symbol simmim_plugin_describe (collectd's one-symbol rule). Plugins
# of every area are found by globbing their build directories, so new ones are checked too.
set -u
export LC_ALL=C # the order of tests/exports.txt
: "${SM_TEST_BUILDDIR:?run through make check}"
top=$SM_TEST_BUILDDIR/..
command -v nm >/dev/null 2>&1 || { echo "nm not found (binutils)"; exit 99; }

fails=0
# Defined dynamic symbols, minus the ones the linker adds to every object.
exports() {
    nm -D --defined-only "$1" | awk '{ print $NF }' |
        grep -v -x -e _init -e _fini -e _edata -e _end -e __bss_start -e _DYNAMIC \
            -e _GLOBAL_OFFSET_TABLE_ -e '__gmon_start__' | sort -u
}

lib=$top/core/.libs/libsimmim.so
[ -f "$lib" ] || { echo "FAIL: $lib not built"; exit 1; }
all=$(exports "$lib")
bad=$(printf '%s\n' "$all" | grep -v -e '^sm_[^_]')
if [ -n "$bad" ]; then
    echo "FAIL: libsimmim exports symbols outside ^sm_[^_]:"
    printf '  %s\n' $bad
    fails=$((fails + 1))
fi
count=$(printf '%s\n' "$all" | grep -c '^sm_')
# the public API is exactly tests/exports.txt: a symbol added or removed by accident fails here;
# one added on purpose is added to the list (and documented in include/simmim/)
list=${SM_TEST_SRCDIR:-$top/../tests}/exports.txt
if [ ! -f "$list" ]; then
    echo "FAIL: $list missing"
    fails=$((fails + 1))
else
    extra=$(printf '%s\n' "$all" | grep '^sm_' | sort -u | comm -23 - "$list")
    missing=$(printf '%s\n' "$all" | grep '^sm_' | sort -u | comm -13 - "$list")
    if [ -n "$extra" ]; then
        echo "FAIL: libsimmim exports symbols not in tests/exports.txt:"
        printf '  %s\n' $extra
        fails=$((fails + 1))
    fi
    if [ -n "$missing" ]; then
        echo "FAIL: symbols of tests/exports.txt that libsimmim does not export:"
        printf '  %s\n' $missing
        fails=$((fails + 1))
    fi
fi

plugins=0
for so in "$top"/plugins/.libs/*.so "$top"/backbones/.libs/*.so "$top"/datasets/.libs/*.so; do
    [ -f "$so" ] || continue
    plugins=$((plugins + 1))
    syms=$(exports "$so")
    if [ "$syms" != "simmim_plugin_describe" ]; then
        echo "FAIL: $so exports:"
        printf '  %s\n' $syms
        fails=$((fails + 1))
    fi
done
echo "checked libsimmim ($count symbols) and $plugins plugin(s)"
[ "$fails" -eq 0 ] || exit 1
