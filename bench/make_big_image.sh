#!/usr/bin/env bash
# Builds a large OCI image layout for bench_convert from copied host files (no Docker engine):
# three layers (/usr/bin, /usr/include, /usr/share/doc: large binaries and many small files), each
# gzip-compressed by umoci.
# Usage: bench/make_big_image.sh DIR     -> image oci:DIR:big
set -euo pipefail
out=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
umoci init --layout "$out" >/dev/null
umoci new --image "$out:big" >/dev/null
for part in usr/bin usr/include usr/share/doc; do
  umoci unpack --image "$out:big" "$tmp/b" >/dev/null
  mkdir -p "$tmp/b/rootfs/$(dirname "$part")"
  cp -a "/$part" "$tmp/b/rootfs/$part"
  umoci repack --image "$out:big" "$tmp/b" >/dev/null
  rm -rf "$tmp/b"
done
umoci config --image "$out:big" --config.cmd /usr/bin/true >/dev/null
du -sh "$out"
