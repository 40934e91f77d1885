#!/bin/sh
# Fetch the Debian packages in evaluation/manpages.txt, extract their section 1 and 8 man pages and render
# them to plain text under $MANPAGES/text (for python -m evaluation.manpages). Needs apt-get (after
# `apt-get update`), dpkg-deb, man and col. Idempotent: pages already rendered are kept.
set -e
MANPAGES=${MANPAGES:-.cache/manpages}
HERE=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$MANPAGES/debs" "$MANPAGES/root" "$MANPAGES/text"
(cd "$MANPAGES/debs" && apt-get download $(cat "$HERE/manpages.txt"))
for deb in "$MANPAGES"/debs/*.deb; do
  dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$MANPAGES/root" --wildcards './usr/share/man/man1/*' './usr/share/man/man8/*' 2>/dev/null || true
done
for page in "$MANPAGES"/root/usr/share/man/man1/* "$MANPAGES"/root/usr/share/man/man8/*; do
  [ -L "$page" ] && continue
  out="$MANPAGES/text/$(basename "$page" .gz).txt"
  [ -s "$out" ] && continue
  MANWIDTH=100 timeout 20 man -l "$page" 2>/dev/null | col -bx > "$out" || true
done
