#!/bin/sh
# fuzz/run.sh [SECONDS] [JOBS] - builds the committed tree (git archive HEAD) with clang, ASan,
# UBSan and libFuzzer coverage in fuzz/build, then runs every target fuzz/fuzz_<name>.c for
# SECONDS (default 60), JOBS targets at a time (default 2). A new target joins by being there:
# its seeds are fuzz/corpus/<name>/ (committed), copied into the working corpus
# fuzz/build/<name>/corpus, which grows from run to run. FUZZ_TARGETS="a b" runs only those.
#
# Needs git, clang and libomp-dev (Debian: clang-14 libomp-14-dev) besides the build
# dependencies. Prints, per target: executions, coverage (edges), corpus size, peak memory and
# what was found. A crash, leak or timeout leaves crash-*, leak-* or timeout-* in
# fuzz/build/<name>/ (the log beside it): fix the bug, add the input to the target's seeds and
# to the tests as a regression case. Exit status 1 if any target found something.
set -eu
secs=${1:-60}
jobs=${2:-2}
src=$(cd "$(dirname "$0")/.." && pwd)
b="$src/fuzz/build"
mkdir -p "$b"
if command -v clang >/dev/null 2>&1; then cc=clang; else cc=clang-14; fi
san="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
rev=$(git -C "$src" rev-parse HEAD)
if [ "$(cat "$b/lib/.rev" 2>/dev/null)" != "$rev" ]; then
    rm -rf "$b/lib"
    mkdir -p "$b/lib"
    git -C "$src" archive HEAD | tar -x -C "$b/lib"
    # the library and the dataset reader plugins (the reader targets load them)
    readers=$(cd "$b/lib/datasets" && for d in */; do [ "$d" = common/ ] || echo "datasets/sm_${d%/}.la"; done)
    (cd "$b/lib" && ./bootstrap >/dev/null 2>&1 &&
        ./configure -q CC="$cc" CFLAGS="-O1 -g -Wno-pass-failed $san -fsanitize=fuzzer-no-link" LDFLAGS="$san" &&
        make -j"$jobs" core/libsimmim.la $readers >/dev/null)
    echo "$rev" >"$b/lib/.rev"
fi
lib="$b/lib/core/.libs"
targets=${FUZZ_TARGETS:-$(cd "$src/fuzz" && for f in fuzz_*.c; do t=${f#fuzz_}; echo "${t%.c}"; done)}
for t in $targets; do
    mkdir -p "$b/$t/corpus"
    "$cc" -O1 -g $san -fsanitize=fuzzer -I"$b/lib/include" -DSM_FUZZ_PLUGINS="\"$b/lib/datasets/.libs\"" \
        "$src/fuzz/fuzz_$t.c" -L"$lib" -lsimmim -Wl,-rpath,"$lib" -o "$b/$t/fuzz_$t"
    if [ -d "$src/fuzz/corpus/$t" ]; then cp "$src/fuzz/corpus/$t"/* "$b/$t/corpus/"; fi
done
# more seeds from the tree: the shipped configs and config fixtures, the golden references
if [ -d "$b/config" ]; then
    find "$src/configs" "$src/tests" -name '*.yaml' -size -64k -exec cp {} "$b/config/corpus/" \;
fi
if [ -d "$b/safetensors" ]; then
    find "$src/tests" -name '*.safetensors' -size -256k -exec cp {} "$b/safetensors/corpus/" \;
fi

# one target: its log, then one summary line
run_one() {
    t=$1
    cd "$b/$t"
    rm -f log
    set +e
    ASAN_OPTIONS="detect_leaks=1:intercept_tls_get_addr=0" ./fuzz_"$t" -max_total_time="$secs" \
        -max_len=65536 -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 corpus >log 2>&1
    rc=$?
    set -e
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' log)
    rss=$(sed -n 's/^stat::peak_rss_mb: *//p' log)
    cov=$(grep -o 'cov: [0-9]*' log | tail -1 | cut -d' ' -f2)
    corp=$(ls corpus | wc -l)
    found=$(ls crash-* leak-* timeout-* oom-* 2>/dev/null | wc -l)
    if [ "$rc" = 0 ]; then what="nothing found"; else what="FOUND $found (exit $rc): see $b/$t/log"; fi
    printf '%-16s %4s s  %10s execs  cov %5s edges  corpus %5s  rss %5s MB  %s\n' "$t" "$secs" \
        "${execs:-?}" "${cov:-?}" "$corp" "${rss:-?}" "$what"
    return "$rc"
}

echo "fuzzing $(echo $targets | wc -w) targets for $secs s each, $jobs at a time"
status=0
# run JOBS targets at a time; the summary lines come in order of completion
set -- $targets
while [ $# -gt 0 ]; do
    pids=""
    for _ in $(seq "$jobs"); do
        [ $# -gt 0 ] || break
        run_one "$1" >"$b/$1.summary" 2>&1 &
        pids="$pids $!"
        shift
    done
    for p in $pids; do wait "$p" || status=1; done
done
for t in $targets; do cat "$b/$t.summary"; done
exit $status
