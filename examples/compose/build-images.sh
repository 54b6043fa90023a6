#!/usr/bin/env bash
# Build the example's PostgreSQL image locally (no registry needed): a minimal Debian 12
# with PostgreSQL 15, made with debootstrap and `docker import`. About a minute; skipped
# when the image exists.
set -euo pipefail
image=${1:-pcr-example-postgres:15}
docker image inspect "$image" > /dev/null 2>&1 && { echo "$image: already built"; exit 0; }
command -v debootstrap > /dev/null || { echo "debootstrap is missing: apt-get install debootstrap"; exit 1; }
rootfs=$(mktemp -d)
trap 'rm -rf "$rootfs"' EXIT
debootstrap --variant=minbase --include=postgresql bookworm "$rootfs" > "$rootfs.log" 2>&1 || { tail -20 "$rootfs.log"; exit 1; }
rm -f "$rootfs.log"
tar -C "$rootfs" -c . | docker import - "$image" > /dev/null
echo "$image: built"
