#!/usr/bin/env bash
# System packages the browser test needs (headless Chromium + ChromeDriver). Installed with apt
# when we are root on Debian/Ubuntu; elsewhere the browser test is skipped unless CI=true.
set -euo pipefail
need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need+=(chromium-driver)
if [ ${#need[@]} -eq 0 ]; then exit 0; fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing ${need[*]} (browser test of the HTML report)"
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
else
  echo "note: ${need[*]} not installed; the browser test of the report will be skipped"
fi
