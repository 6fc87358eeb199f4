#!/usr/bin/env bash
# base.sh -- a local base image for deploy/Dockerfile, where no registry can be reached.
#
#   dev/container/base.sh [IMAGE]      (root; default IMAGE localhost/mailroom-base:bookworm)
#
# debootstraps a minimal Debian bookworm root with python3 and its venv module (from the
# Debian mirror apt already uses), adds this machine's CA bundle (so pip inside the build
# trusts what the host trusts), and imports it into podman's store. Then:
#   podman build --isolation chroot --format docker --network host \
#       --build-arg BASE=localhost/mailroom-base:bookworm -f deploy/Dockerfile -t mailroom-screener .
# About 2-3 minutes; needs the packages podman, buildah and debootstrap.
set -euo pipefail
image=${1:-localhost/mailroom-base:bookworm}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
for tool in podman debootstrap; do
    command -v "$tool" >/dev/null || { echo "base.sh: $tool is missing: apt-get install podman buildah debootstrap" >&2; exit 1; }
done
root=$(mktemp -d /tmp/mailroom-base.XXXXXX)
trap 'rm -rf "$root"' EXIT
debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates bookworm "$root" "$mirror" >&2
cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
tar -C "$root" -c --numeric-owner . | podman import --change 'CMD ["python3"]' - "$image"
echo "base.sh: imported $image" >&2
