#!/usr/bin/env bash
# Builds the image examples/web.yaml runs, skiff.local/busybox-httpd:1.35, from Debian's
# busybox-static with umoci (no network needed), and imports it into the node's image store:
#
#   make-httpd-image.sh [SKIFF_BINARY] [IMAGE_STORE_DIR]
#
# One layer: /bin/busybox with the applets the example uses (sh, httpd, hostname, ...),
# /etc/passwd and /etc/group, /tmp. Config: PATH=/bin, Cmd httpd -f -p 8080 -h /www.
# Needs root (umoci keeps file owners), busybox-static and umoci.
set -euo pipefail

skiff=${1:-skiff}
store=${2:-/var/lib/skiff/kubelet/images}
name=skiff.local/busybox-httpd:1.35
busybox=/bin/busybox
[[ -x $busybox ]] || { echo "make-httpd-image: $busybox missing (apt-get install busybox-static)" >&2; exit 1; }
command -v umoci >/dev/null || { echo "make-httpd-image: umoci missing (apt-get install umoci)" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
layout=$work/layout
umoci init --layout "$layout"
umoci new --image "$layout:1.35"

root=$work/rootfs
mkdir -p "$root/bin" "$root/etc" "$root/tmp" "$root/www"
cp "$busybox" "$root/bin/busybox"
for applet in sh httpd hostname echo cat ls mkdir sleep env wget nc ip ps kill true false date; do
  ln -s busybox "$root/bin/$applet"
done
chmod 1777 "$root/tmp"
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' \
  >"$root/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
echo "hello from busybox httpd" >"$root/www/index.html"
tar -C "$root" --numeric-owner --owner=0 --group=0 -cf "$work/layer.tar" bin etc tmp www
umoci raw add-layer --image "$layout:1.35" "$work/layer.tar"
umoci config --image "$layout:1.35" --config.env PATH=/bin --config.cmd httpd \
  --config.cmd -f --config.cmd -p --config.cmd 8080 --config.cmd -h --config.cmd /www \
  --config.workingdir / --config.exposedports 8080/tcp --architecture amd64 --os linux
umoci gc --layout "$layout"

"$skiff" image --root "$store" import "$layout" --name "$name"
