#!/usr/bin/env bash
# Optional system tools some tests use (the real Source Extractor binary).
# Installs them with apt-get when we are root and apt is there; otherwise the tests that
# need them are skipped with a stated reason. Never fails the caller.
set -u
if command -v source-extractor >/dev/null 2>&1 || command -v sex >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq source-extractor) >/dev/null 2>&1 \
    || echo "install_system_tools: could not install source-extractor; its tests will be skipped"
else
  echo "install_system_tools: not root or no apt-get; source-extractor tests will be skipped"
fi
exit 0
