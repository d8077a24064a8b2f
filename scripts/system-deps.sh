#!/usr/bin/env bash
# System packages the tests need beyond the Python stack:
# - Debian's Chromium and its chromedriver for the headless browser tests (the Dagster UI
#   screenshot, the review app under selenium);
# - Debian's PostgreSQL server for the deploy recipe's test (Dagster's run, event and schedule
#   storage on a real server); the tests start their own server in a scratch folder.
# Installed only when missing, and only where apt-get can (root, as in CI); elsewhere it says
# what to install and those tests skip with the same message (in CI they fail instead).
set -euo pipefail
missing=()
if ! { command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; } ||
    ! command -v chromedriver >/dev/null 2>&1; then
    missing+=(chromium chromium-driver)
fi
if ! command -v pg_ctl >/dev/null 2>&1 && ! ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1; then
    missing+=(postgresql)
fi
if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing Debian's ${missing[*]} for the tests (apt-get)"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        "${missing[@]}" >/dev/null
else
    echo "note: missing ${missing[*]} (apt-get install ${missing[*]});" \
        "the tests that need them will skip"
fi
