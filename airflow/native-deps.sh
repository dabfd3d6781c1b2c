#!/bin/sh
# The Debian packages a lock's source-only packages need: `build` (compilers and headers, in the
# image's build stage) or `run` (the shared libraries, in the image). Nothing when the lock has none.
set -eu
stage=$1 lock=$2
build="" run=""
if grep -q '^psycopg2==' "$lock"; then build="$build libpq-dev"; run="$run libpq5"; fi
if grep -q '^pycurl==' "$lock"; then build="$build libcurl4-openssl-dev libssl-dev"; run="$run libcurl4"; fi
[ -n "$build" ] || exit 0
if [ "$stage" = build ]; then
  packages="gcc libc6-dev$build"
  # Debian's Python (the local base) has no headers; the upstream image has its own.
  include=$(python3 -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
  [ -f "$include/Python.h" ] || packages="$packages python3-dev"
else
  packages="${run# }"
fi
apt-get update
DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $packages
rm -rf /var/lib/apt/lists/*
