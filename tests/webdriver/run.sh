#!/usr/bin/env bash
# Run the WebDriver tests against a desktop binary. Call under a display (xvfb-run):
#   xvfb-run -a -s "-screen 0 1280x800x24" tests/webdriver/run.sh target/debug/postern-desktop
# The binary must embed ui/dist: build it with `tauri build --debug --no-bundle`, and
# postern-sandbox must be built beside it (the app starts it from its own folder).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
binary="$(realpath "$1")"
driver="${TAURI_DRIVER:-tauri-driver}"
log="${POSTERN_WEBDRIVER_LOG:-target/tauri-driver.log}"
mkdir -p "$(dirname "$log")"
[ -x "$(dirname "$binary")/postern-sandbox" ] || {
  echo "run.sh: $(dirname "$binary")/postern-sandbox is missing: cargo build -p postern-sandbox" >&2
  exit 1
}

# The app inherits tauri-driver's environment: give it AWS files and a Postern folder of its
# own (empty: a newcomer's machine), never the user's, and no AWS variables.
home="$(mktemp -d)"
trap 'rm -rf "$home"' EXIT
for name in $(env | sed -n 's/^\(AWS_[A-Z_]*\)=.*/\1/p'); do unset "$name"; done
export POSTERN_HOME="$home/postern"
export AWS_CONFIG_FILE="$home/aws/config"
export AWS_SHARED_CREDENTIALS_FILE="$home/aws/credentials"

"$driver" >"$log" 2>&1 &
driver_pid=$!
trap 'kill "$driver_pid" 2>/dev/null; wait "$driver_pid" 2>/dev/null || true; rm -rf "$home"' EXIT

POSTERN_DESKTOP_BINARY="$binary" python3 -m unittest discover -v -s "$here" -p 'test_*.py'
