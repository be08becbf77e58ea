#!/usr/bin/env bash
# Installs what the test suite needs beyond npm packages: from Debian, AWS CLI
# v2 and boto3 1.26 (clients of the older Query protocol), Chromium for the
# dashboard's browser tests, promtool (package prometheus), GoAccess and
# nghttp (package nghttp2-client, an HTTP/2 client for the edge's tests); and
# pip's current boto3 and AWS CLI v1 where a pip is at hand. Each install runs only when something is
# missing, so a second run costs a few seconds.
set -euo pipefail

debian_packages=(awscli python3-boto3 curl ca-certificates chromium prometheus goaccess nghttp2-client)
missing=()
for package in "${debian_packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$package")
  fi
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "install-test-deps: missing Debian packages ${missing[*]}; run as root or install them" >&2
    exit 1
  fi
  echo "install-test-deps: installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if command -v python3 >/dev/null && [ "$(command -v python3)" != /usr/bin/python3 ]; then
  if ! python3 -c 'import boto3' 2>/dev/null || ! python3 -m awscli --version >/dev/null 2>&1; then
    echo "install-test-deps: installing boto3 and awscli with pip"
    python3 -m pip install --quiet boto3 awscli || echo "install-test-deps: pip install failed; the pip boto3 tests will be skipped" >&2
  fi
fi

bash "$(dirname "$0")/fetch-site.sh"
