#!/usr/bin/env bash
# Install the TypeORM fixture project used by the `opsd rehearse` integration tests.
# Usage: install.sh [TARGET_DIR]   (default: ${OPSD_TYPEORM_DIR:-/var/cache/opsd-test/typeorm})
# Copies package.json, package-lock.json, data-source.js and migrations/ to TARGET_DIR and runs
# `npm ci` there, unless node_modules is present and package-lock.json is unchanged since the last run.
set -euo pipefail

for tool in node npm; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "install.sh: '$tool' not found on PATH; install Node.js and npm (Debian: apt-get install nodejs npm)" >&2
    exit 1
  fi
done

src="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
dest="${1:-${OPSD_TYPEORM_DIR:-/var/cache/opsd-test/typeorm}}"

mkdir -p "$dest"
cp "$src/package.json" "$src/package-lock.json" "$src/data-source.js" "$dest/"
rm -rf "$dest/migrations"
cp -R "$src/migrations" "$dest/migrations"

stamp="$dest/.package-lock.sha256"
want="$(sha256sum "$dest/package-lock.json" | cut -d' ' -f1)"
have="$(cat "$stamp" 2>/dev/null || true)"
if [[ -d "$dest/node_modules" && "$want" == "$have" ]]; then
  echo "install.sh: node_modules up to date in $dest"
else
  rm -f "$stamp"
  (cd "$dest" && npm ci --no-audit --no-fund)
  echo "$want" > "$stamp"
fi

chmod -R a+rX "$dest"
echo "install.sh: TypeORM fixture ready in $dest"
