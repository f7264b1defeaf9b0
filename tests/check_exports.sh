#!/bin/sh
# tests/check_exports.sh - the library exports only its public prefix (sm_ but not sm__), and
# every plugin only its entry symbol simmim_plugin_describe (collectd's one-symbol rule). Plugins
# of every area are found by globbing their build directories, so new ones are checked too.
set -u
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
if [ "$count" -lt 50 ]; then
    echo "FAIL: libsimmim exports only $count sm_ symbols"
    fails=$((fails + 1))
fi
for sym in sm_config_read sm_config_validate sm_registry_add sm_plugin_load sm_error_set; do
    if ! printf '%s\n' "$all" | grep -q -x "$sym"; then
        echo "FAIL: $sym not exported"
        fails=$((fails + 1))
    fi
done

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
