#!/usr/bin/env bash
# Builds the lab's boot images from Debian packages and publishes them as a
# gpg-signed simplestreams mirror, the way images.maas.io is laid out:
#
#   boot-kernel  Debian's kernel (linux-image-<ver>-amd64, EFI stub, Debian-signed)
#   boot-initrd  a busybox initramfs: loads the virtio/ext4/squashfs modules,
#                brings the network up, fetches `root=squash:<url>`, mounts it
#                under a tmpfs overlay and runs the ephemeral environment in it
#   squashfs     the ephemeral environment (tests/lab/ephemeral): busybox, the
#                disk tools (sfdisk, mkfs, extlinux) and the MAAS client scripts
#   root-tgz     a debootstrapped Debian (systemd, cloud-init, openssh-server)
#                with the same kernel and a small initrd that mounts the root by
#                UUID: what the installer writes to the disk
#
# Everything is cached under ${LAB_CACHE:-~/.cache/maas-rs/lab}, keyed by the
# hash of its inputs (package versions, this script, the ephemeral scripts), so a
# rerun with nothing changed takes a second. The signing key lives in the cache
# too, so the keyring stays the same across runs.
#
# usage: build-images.sh            prints the output directory on its last line:
#          <out>/mirror/streams/v1/index.sjson   signed index
#          <out>/keyring.gpg                      the public key that signed it
#          <out>/timings                          seconds per step of a cold build
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
CACHE=${LAB_CACHE:-$HOME/.cache/maas-rs/lab}
MIRROR=${LAB_DEBIAN_MIRROR:-$(grep -rhs -m1 '^URIs:.*debian$' /etc/apt/sources.list.d/ | awk '{print $2; exit}')}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
SUITE=bookworm
mkdir -p "$CACHE"
log() { echo "build-images: $*" >&2; }
die() { log "error: $*"; exit 1; }
for t in apt-get dpkg-deb cpio mksquashfs debootstrap modinfo depmod gpg grub-mkstandalone; do
  command -v "$t" >/dev/null || die "$t missing: run scripts/install-deps.sh (scripts/deps/lab.apt)"
done
[[ -x /bin/busybox ]] || die "/bin/busybox missing: install busybox-static"
VENV=$("$REPO/scripts/venv-path.sh")
[[ -x $VENV/bin/json2streams ]] || die "json2streams missing: install PyPI python-simplestreams (scripts/deps/lab.pip)"

hash_of() { sha256sum | cut -c1-16; }
# Each step builds in a scratch directory next to its cache entry and renames
# it into place when complete; a failed step leaves nothing behind.
WORK=
trap 'rm -rf "${WORK:-/nonexistent}"' EXIT
TIMINGS=()
timed() { # NAME CMD...
  local name=$1 t0=$SECONDS; shift
  "$@"; TIMINGS+=("$name $((SECONDS - t0))")
}

# --- the kernel ----------------------------------------------------------------
KPKG=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-/{print $2; exit}')
[[ -n $KPKG ]] || die "no linux-image-<ver> behind linux-image-amd64 (apt-get update?)"
KVER=${KPKG#linux-image-}
KDEBVER=$(apt-cache policy "$KPKG" | awk '/Candidate:/{print $2}')
KDIR=$CACHE/kernel-$KVER-$KDEBVER

fetch_kernel() {
  local w; w=$(mktemp -d "$CACHE/.kernel.XXXX"); WORK=$w
  (cd "$w" && apt-get download -q "$KPKG" >/dev/null)
  dpkg-deb -x "$w"/*.deb "$w/root"
  mkdir -p "$w/out"
  mv "$w/root/boot/vmlinuz-$KVER" "$w/out/vmlinuz"
  mv "$w/root/boot/config-$KVER" "$w/out/config"
  mv "$w/root/lib/modules/$KVER" "$w/out/modules"
  rm -rf "$KDIR"; mv "$w/out" "$KDIR"; rm -rf "$w"
}
[[ -f $KDIR/vmlinuz ]] || timed kernel fetch_kernel

# Modules NAMES... → their .ko paths, dependencies first (no modules.dep in
# the package and no depmod at boot, so the initrd insmods in this order).
declare -A KO_PATH=()
while IFS= read -r f; do b=${f##*/}; KO_PATH[${b%.ko}]=$f; done < <(find "$KDIR/modules/kernel" -name '*.ko')
declare -A SEEN=()
ORDER=()
visit() {
  local m=${1//-/_} d
  [[ -n ${SEEN[$m]:-} ]] && return 0
  SEEN[$m]=1
  local f=${KO_PATH[$m]:-${KO_PATH[${1//_/-}]:-}}
  if [[ -z $f ]]; then
    grep -qE "/${m//_/[-_]}\.ko$" "$KDIR/modules/modules.builtin" || die "kernel module $m not found"
    return 0
  fi
  for d in $(modinfo -F depends "$f" | tr ',' ' '); do visit "$d"; done
  ORDER+=("$f")
}
# virtio devices, the e1000 NIC, ext4 (+ the crc32c it requests by name),
# FAT for an EFI system partition, and the loop/squashfs/overlay stack.
MODULES=(virtio_pci virtio_net virtio_blk e1000 crc32c_generic ext4 vfat nls_cp437 nls_ascii nls_utf8 loop squashfs overlay)
for m in "${MODULES[@]}"; do visit "$m"; done

copy_modules() { # DEST: .ko files + an `order` file
  mkdir -p "$1"
  local f
  for f in "${ORDER[@]}"; do cp "$f" "$1/"; echo "${f##*/}" >> "$1/order"; done
}

# Copies binaries and the shared libraries they load into a root.
copy_with_libs() { # ROOT BIN...
  local root=$1 b l; shift
  for b in "$@"; do
    mkdir -p "$root$(dirname "$b")"; cp -L "$b" "$root$b"
    for l in $(ldd "$b" 2>/dev/null | grep -o '/[^ ]*'); do
      [[ -e $root$l ]] || { mkdir -p "$root$(dirname "$l")"; cp -L "$l" "$root$l"; }
    done
  done
}

# --- the ephemeral environment (squashfs) and its initrd ----------------------
EPH_KEY=$( { cat "$0" "$HERE"/ephemeral/*; echo "$KVER $KDEBVER"; busybox 2>&1 | head -1; } | hash_of)
EPH=$CACHE/ephemeral-$EPH_KEY
build_ephemeral() {
  local w; w=$(mktemp -d "$CACHE/.eph.XXXX"); WORK=$w
  # initrd: busybox, the modules, /init.
  local i=$w/initrd
  mkdir -p "$i"/{bin,dev,proc,sys,run,tmp,root,lib/modules}
  cp /bin/busybox "$i/bin/busybox"
  copy_modules "$i/lib/modules"
  install -m 755 "$HERE/ephemeral/init" "$i/init"
  install -m 755 "$HERE/ephemeral/udhcpc.script" "$i/bin/udhcpc.script"
  (cd "$i" && find . | cpio -o -H newc --quiet | gzip -6) > "$w/boot-initrd"

  # squashfs: busybox with its applets, disk tools, the lab scripts.
  local r=$w/root
  mkdir -p "$r"/{bin,sbin,dev,proc,sys,run,tmp,etc,mnt,target,lab}
  cp /bin/busybox "$r/bin/busybox"
  for a in $(/bin/busybox --list); do [[ -e $r/bin/$a ]] || ln -s busybox "$r/bin/$a"; done
  copy_with_libs "$r" /usr/sbin/sfdisk /usr/sbin/mke2fs /usr/sbin/mkfs.vfat /usr/sbin/wipefs \
    /usr/sbin/blkid /usr/bin/extlinux
  # The tools maasd's builtin commissioning scripts call (`lsblk -J`, `ip -j`,
  # `lspci -nnmm`, `lsusb`): the real ones, ahead of busybox's on the PATH.
  local t
  for t in lsblk ip lspci lsusb; do
    copy_with_libs "$r" "$(command -v "$t")"
    mkdir -p "$r/usr/local/bin"; ln -sf "$(command -v "$t")" "$r/usr/local/bin/$t"
  done
  mkdir -p "$r/usr/share/misc"; cp /usr/share/misc/pci.ids "$r/usr/share/misc/" 2>/dev/null || true
  ln -sf /usr/sbin/mke2fs "$r/sbin/mkfs.ext4"
  cp /usr/lib/syslinux/mbr/mbr.bin /usr/lib/syslinux/mbr/gptmbr.bin "$r/lab/"
  # UEFI: a standalone GRUB for the ESP that finds the installed root by the
  # file the installer writes there and reads the kernel line from it.
  printf 'search --no-floppy --file --set=root /boot/grub/lab.cfg\nconfigfile /boot/grub/lab.cfg\n' > "$w/grub.cfg"
  grub-mkstandalone -O x86_64-efi -o "$r/lab/BOOTX64.EFI" \
    --modules="part_gpt part_msdos ext2 fat search search_fs_file configfile linux normal echo" \
    --install-modules="part_gpt part_msdos ext2 fat search search_fs_file configfile linux normal echo gzio all_video" \
    --locales= --fonts= --themes= "boot/grub/grub.cfg=$w/grub.cfg"
  local s
  for s in "$HERE"/ephemeral/*.sh; do install -m 755 "$s" "$r/lab/"; done
  install -m 755 "$HERE/ephemeral/udhcpc.script" "$r/lab/udhcpc.script"
  echo "$EPH_KEY" > "$r/lab/VERSION"
  echo "root:x:0:0:root:/root:/bin/sh" > "$r/etc/passwd"
  mksquashfs "$r" "$w/squashfs" -comp gzip -noappend -all-root -quiet >/dev/null
  mkdir -p "$w/out"; mv "$w/boot-initrd" "$w/squashfs" "$w/out/"
  rm -rf "$EPH"; mv "$w/out" "$EPH"; rm -rf "$w"
}
[[ -f $EPH/squashfs ]] || timed ephemeral build_ephemeral

# --- the deployable Debian (root-tgz) -----------------------------------------
# python3-cffi-backend: debootstrap does not resolve the virtual package
# python3-cryptography needs (python3-cffi-backend-api-*).
ROOT_PKGS=systemd-sysv,udev,kmod,cloud-init,python3-cffi-backend,ifupdown,isc-dhcp-client,openssh-server,sudo,netbase,iproute2,ca-certificates
ROOT_KEY=$( { sed -n '/^# --- the deployable/,/^# --- the mirror/p' "$0"; cat "$HERE/ephemeral/local-init"; echo "$ROOT_PKGS $KVER $KDEBVER $MIRROR"; } | hash_of)
ROOT=$CACHE/root-$ROOT_KEY
build_root() {
  local w; w=$(mktemp -d "$CACHE/.root.XXXX"); WORK=$w
  local r=$w/rootfs
  debootstrap --variant=minbase --include="$ROOT_PKGS" "$SUITE" "$r" "$MIRROR" >"$w/debootstrap.log" 2>&1 ||
    { tail -20 "$w/debootstrap.log" >&2; die "debootstrap failed"; }
  # The kernel, only the modules a VM needs (the full set is 400 MB), and
  # their modules.dep so udev loads them.
  cp "$KDIR/vmlinuz" "$r/boot/vmlinuz-$KVER"
  local md=$r/lib/modules/$KVER f rel
  mkdir -p "$md"
  cp "$KDIR"/modules/modules.{order,builtin,builtin.modinfo} "$md/" 2>/dev/null || true
  for f in "${ORDER[@]}"; do
    rel=${f#"$KDIR/modules/"}; mkdir -p "$md/$(dirname "$rel")"; cp "$f" "$md/$rel"
  done
  depmod -b "$r" "$KVER"
  # The initrd of the installed system: mounts root=UUID=… and switches to systemd.
  local i=$w/initrd
  mkdir -p "$i"/{bin,dev,proc,sys,newroot,lib/modules}
  cp /bin/busybox "$i/bin/busybox"
  copy_modules "$i/lib/modules"
  install -m 755 "$HERE/ephemeral/local-init" "$i/init"
  (cd "$i" && find . | cpio -o -H newc --quiet | gzip -6) > "$r/boot/initrd.img-$KVER"
  ln -sf "vmlinuz-$KVER" "$r/boot/vmlinuz"; ln -sf "initrd.img-$KVER" "$r/boot/initrd.img"
  # No identity baked into the image: each machine makes its own.
  : > "$r/etc/machine-id"; rm -f "$r"/etc/ssh/ssh_host_*
  rm -rf "$r"/var/cache/apt/archives/*.deb "$r"/var/lib/apt/lists/* "$r"/usr/share/doc "$r"/usr/share/man
  mkdir -p "$w/out"
  tar -C "$r" --numeric-owner -czf "$w/out/root-tgz" .
  rm -rf "$ROOT"; mv "$w/out" "$ROOT"; rm -rf "$w"
}
[[ -f $ROOT/root-tgz ]] || timed root build_root

# --- the mirror -----------------------------------------------------------------
GNUPGHOME=$CACHE/gnupg
export GNUPGHOME
if [[ ! -f $GNUPGHOME/.lab-key ]]; then
  rm -rf "$GNUPGHOME"; mkdir -m 700 "$GNUPGHOME"
  gpg -q --batch --pinentry-mode loopback --passphrase '' \
    --quick-gen-key 'maas-rs lab mirror <lab@example.invalid>' ed25519 sign never
  touch "$GNUPGHOME/.lab-key"
fi
OUT_KEY=$( { echo "$EPH_KEY $ROOT_KEY $KVER $KDEBVER"; gpg --export | sha256sum; sed -n '/^# --- the mirror/,$p' "$0"; } | hash_of)
OUT=$CACHE/mirror-$OUT_KEY
build_mirror() {
  local w; w=$(mktemp -d "$CACHE/.mirror.XXXX"); WORK=$w
  local m=$w/mirror serial
  serial=$(date -u +%Y%m%d)
  local base=$SUITE/amd64/$serial
  mkdir -p "$m/$base/generic"
  # Hard links: the cache holds one copy of each big file.
  ln "$KDIR/vmlinuz" "$m/$base/generic/boot-kernel"
  ln "$EPH/boot-initrd" "$m/$base/generic/boot-initrd"
  ln "$EPH/squashfs" "$m/$base/squashfs"
  ln "$ROOT/root-tgz" "$m/$base/root-tgz"
  python3 - "$m" "$base" "$serial" "$KPKG" > "$w/items.json" <<'PY'
import hashlib, json, os, sys
root, base, serial, kpkg = sys.argv[1:]
items = []
# The Debian product, and the same files once more under the name maasd's
# rack asks for when it boots its commissioning release (ubuntu/noble): the
# lab has no Ubuntu image, and says so in release_title.
products = [
    dict(product_name="com.ubuntu.maas.stable:v3:boot:12:amd64:generic", os="debian",
         release="bookworm", release_codename="Bookworm", release_title="Debian 12",
         version="12", subarch="generic", subarches="generic", krel="bookworm"),
    dict(product_name="com.ubuntu.maas.stable:v3:boot:24.04:amd64:ga-24.04", os="ubuntu",
         release="noble", release_codename="Noble Numbat",
         release_title="Debian 12 (maas-rs lab stand-in for the Ubuntu commissioning release)",
         version="24.04", subarch="ga-24.04", subarches="generic,ga-24.04,hwe-24.04", krel="noble"),
]
sums = {}
for name, rel in [("boot-kernel", f"{base}/generic/boot-kernel"),
                  ("boot-initrd", f"{base}/generic/boot-initrd"),
                  ("squashfs", f"{base}/squashfs"),
                  ("root-tgz", f"{base}/root-tgz")]:
    h = hashlib.sha256()
    with open(os.path.join(root, rel), "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    sums[name] = (rel, h.hexdigest(), os.path.getsize(os.path.join(root, rel)))
for p in products:
    for name, (rel, sha, size) in sums.items():
        item = {"content_id": "com.ubuntu.maas:stable:v3:download", "version_name": serial,
                "item_name": name, "ftype": name, "path": rel, "sha256": sha, "size": size,
                "arch": "amd64", "kflavor": "generic", "label": "stable", **p}
        if name.startswith("boot-"):
            item["kpackage"] = kpkg
        items.append(item)
print(json.dumps(items))
PY
  "$VENV/bin/json2streams" "$w/items.json" "$m" >/dev/null
  # The index must name the signed product files (lab.md C).
  sed -i 's/\.json"/.sjson"/' "$m/streams/v1/index.json"
  local f
  for f in "$m"/streams/v1/*.json; do
    gpg -q --batch --yes --clearsign --output "${f%.json}.sjson" "$f"
  done
  gpg -q --export > "$w/keyring.gpg"
  printf '%s\n' "${TIMINGS[@]}" > "$w/timings"
  mkdir -p "$w/out"; mv "$m" "$w/keyring.gpg" "$w/timings" "$w/out/"
  rm -rf "$OUT"; mv "$w/out" "$OUT"; rm -rf "$w"
}
[[ -f $OUT/mirror/streams/v1/index.sjson ]] || build_mirror
log "mirror ready: $OUT/mirror (keyring $OUT/keyring.gpg)"
echo "$OUT"
