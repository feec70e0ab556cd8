#!/usr/bin/env bash
# Headless Chromium and its WebDriver for the browser test, from the Debian packages (installed if missing).
# Prints "CHROMIUM_PATH CHROMEDRIVER_PATH".
set -euo pipefail
find_pair() {
  local browser driver
  browser=$(command -v chromium || command -v chromium-browser || true)
  driver=$(command -v chromedriver || true)
  [ -n "$browser" ] && [ -n "$driver" ] && echo "$browser $driver"
}
if ! find_pair >/dev/null; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo -n"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get install -y -q chromium chromium-driver >&2 \
    || { $SUDO apt-get update -q >&2 && $SUDO apt-get install -y -q chromium chromium-driver >&2; }
fi
find_pair || { echo "chromium and chromium-driver not found and could not be installed" >&2; exit 3; }
