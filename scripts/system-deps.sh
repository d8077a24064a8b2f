#!/usr/bin/env bash
# System packages the tests need beyond the Python stack: Debian's Chromium for the headless
# browser test. Installed only when missing, and only where apt-get can (root, as in CI);
# elsewhere it says what to install and the browser test skips with the same message.
set -euo pipefail
if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then
    exit 0
fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing Debian's chromium for the browser test (apt-get)"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null
else
    echo "note: chromium is not installed (apt-get install chromium); the browser test will skip"
fi
