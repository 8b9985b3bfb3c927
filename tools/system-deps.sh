#!/bin/sh
# System packages the build and the tests need: a C compiler, and libseccomp (loaded by the
# pyseccomp test oracle). Installs with apt-get only what is missing (needs root; CI is root).
set -e
missing=""
command -v gcc >/dev/null 2>&1 || missing="$missing gcc libc6-dev"
ldconfig -p 2>/dev/null | grep -q 'libseccomp\.so\.2' || missing="$missing libseccomp2"
if [ -n "$missing" ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "missing system packages:$missing (run as root or install them: apt-get install$missing)" >&2
    exit 1
  fi
  echo "installing:$missing"
  apt-get update -qq
  # shellcheck disable=SC2086
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing
fi
