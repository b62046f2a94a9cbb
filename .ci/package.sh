#!/usr/bin/env bash
# CI, after the tests: builds every installer (installers/README.md) into target/dist/ and
# checks each one as a user would meet it. Fails at the first broken step, naming it.
# Needs root, the packages of .ci/install-deps.sh, and the Debian mirror (debootstrap).
set -euo pipefail
cd "$(dirname "$0")/.."
started=$(date +%s)
current="setup"
exec 4>&2 # the job's stderr, for the failure line (a step's own stderr is redirected while timed)
on_exit() {
    local status=$?
    [ "$status" = 0 ] || echo "package.sh: FAILED in step: $current (exit $status, after $(($(date +%s) - started)) s)" >&4
}
trap on_exit EXIT

timings=()
timing_file=$(mktemp)
run() { # run NAME COMMAND…: one step, timed (wall and CPU: other load on the machine shows as wall > CPU / cores)
    current=$1
    shift
    local real user sys TIMEFORMAT='%0R %0U %0S'
    echo
    echo "######## package.sh: $current"
    { time "$@" 2>&3; } 3>&2 2> "$timing_file"
    read -r real user sys < "$timing_file"
    timings+=("$(printf '%-14s %5d s wall %5d s CPU' "$current" "$real" $((user + sys)))")
}

run "lint"           shellcheck -x .ci/package.sh installers/common.sh installers/*/*.sh installers/linux/postinst
run "linux build"    bash installers/linux/build.sh
run "linux check"    bash installers/linux/check.sh
run "windows build"  bash installers/windows/build.sh
run "windows check"  bash installers/windows/check.sh
run "macos check"    bash installers/macos/check.sh

echo
echo "package.sh: every installer built and checked in $(( $(date +%s) - started )) s"
printf '  %s\n' "${timings[@]}"
rm -f "$timing_file"
ls -l target/dist/
