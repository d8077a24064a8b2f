#!/usr/bin/env bash
# System packages the tests need beyond the Python stack: Debian's Chromium and its chromedriver
# for the headless browser tests (the Dagster UI screenshot, the review app under selenium).
# Installed only when missing, and only where apt-get can (root, as in CI); elsewhere it says
# what to install and the browser tests skip with the same message.
set -euo pipefail
if { command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; } &&
    command -v chromedriver >/dev/null 2>&1; then
    exit 0
fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing Debian's chromium and chromium-driver for the browser tests (apt-get)"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        chromium chromium-driver >/dev/null
else
    echo "note: chromium or chromedriver is missing (apt-get install chromium chromium-driver);" \
        "the browser tests will skip"
fi
