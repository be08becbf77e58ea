#!/usr/bin/env bash
# Extracts the HTML documentation of Debian's nodejs-doc package into
# .cache/nodejs-doc (or $PORTICO_SITE_DIR), the static site that the runbook
# example and test upload. The package is unpacked, not installed, because
# installing it would replace a Node.js that did not come from Debian.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
site=${PORTICO_SITE_DIR:-$repo/.cache/nodejs-doc}
if [ -f "$site/index.html" ]; then
  exit 0
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
chmod 0777 "$work"
if ! apt-get download nodejs-doc >/dev/null 2>&1; then
  apt-get update >/dev/null
  apt-get download nodejs-doc >/dev/null
fi
dpkg-deb -x nodejs-doc_*.deb unpacked
mkdir -p "$(dirname "$site")"
rm -rf "$site"
mv unpacked/usr/share/doc/nodejs/api "$site"
echo "nodejs-doc site: $(find "$site" -type f | wc -l) files in $site"
