#!/usr/bin/env bash
# Run the WebDriver tests against a desktop binary. Call under a display (xvfb-run):
#   xvfb-run -a -s "-screen 0 1280x800x24" tests/webdriver/run.sh target/debug/postern-desktop
# The binary must embed ui/dist: build it with `tauri build --debug --no-bundle`.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
binary="$(realpath "$1")"
driver="${TAURI_DRIVER:-tauri-driver}"
log="${POSTERN_WEBDRIVER_LOG:-target/tauri-driver.log}"
mkdir -p "$(dirname "$log")"

"$driver" >"$log" 2>&1 &
driver_pid=$!
trap 'kill "$driver_pid" 2>/dev/null; wait "$driver_pid" 2>/dev/null || true' EXIT

POSTERN_DESKTOP_BINARY="$binary" python3 -m unittest discover -v -s "$here" -p 'test_*.py'
