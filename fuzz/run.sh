#!/bin/sh
# fuzz/run.sh [SECONDS] - builds the committed tree (git archive HEAD) with clang, ASan, UBSan
# and libFuzzer coverage in fuzz/build, then runs each target for SECONDS (default 60) on a
# corpus kept in fuzz/build/<target>/corpus (seeded from the shipped configs, fuzz/corpus/<target>
# and, when the normal build has made it, JPEGs from tests/mkimages). Needs git, clang and
# libomp-dev (Debian: clang-14 libomp-14-dev) besides the build dependencies. A crash leaves crash-* in
# fuzz/build/<target>/: fix it and add the input to the tests as a regression case.
set -eu
secs=${1:-60}
src=$(cd "$(dirname "$0")/.." && pwd)
b="$src/fuzz/build"
mkdir -p "$b"
san="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
rev=$(git -C "$src" rev-parse HEAD)
if [ "$(cat "$b/lib/.rev" 2>/dev/null)" != "$rev" ]; then
    rm -rf "$b/lib"
    mkdir -p "$b/lib"
    git -C "$src" archive HEAD | tar -x -C "$b/lib"
    (cd "$b/lib" && ./bootstrap >/dev/null 2>&1 &&
        ./configure -q CC=clang CFLAGS="-O1 -g $san -fsanitize=fuzzer-no-link" LDFLAGS="$san" &&
        make -j2 core/libsimmim.la >/dev/null)
    echo "$rev" >"$b/lib/.rev"
fi
lib="$b/lib/core/.libs"
for t in config image safetensors convert; do
    mkdir -p "$b/$t/corpus"
    clang -O1 -g $san -fsanitize=fuzzer -I"$b/lib/include" \
        "$src/fuzz/fuzz_$t.c" -L"$lib" -lsimmim -Wl,-rpath,"$lib" -o "$b/$t/fuzz_$t"
done
# seeds: the shipped configs and config fixtures, the test images, the golden references
find "$src/configs" "$src/tests" -name '*.yaml' -size -64k -exec cp {} "$b/config/corpus/" \; 2>/dev/null || true
if [ -x "$src/tests/mkimages" ] && [ ! -d "$b/images" ]; then
    mkdir -p "$b/images" && "$src/tests/mkimages" "$b/images" >/dev/null &&
        cp "$b"/images/aircas/*.jpg "$b/image/corpus/" 2>/dev/null || true
fi
find "$src/tests" -name '*.safetensors' -size -256k -exec cp {} "$b/safetensors/corpus/" \; 2>/dev/null || true
cp "$src"/fuzz/corpus/convert/* "$b/convert/corpus/" 2>/dev/null || true
status=0
for t in config image safetensors convert; do
    echo "fuzz_$t: $secs s"
    (cd "$b/$t" && ASAN_OPTIONS=detect_leaks=1 ./fuzz_$t -max_total_time="$secs" -max_len=65536 \
        -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 corpus 2>"$b/$t/log" ) || status=1
    grep -E 'stat::number_of_executed_units|stat::peak_rss_mb|ERROR|SUMMARY' "$b/$t/log" || true
done
exit $status
