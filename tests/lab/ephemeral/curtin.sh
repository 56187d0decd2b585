#!/bin/sh
# The lab's installer for curtin's configuration (curtin itself is not
# installable here): applies `storage: {version: 1, config: [...]}` — disk,
# partition, format, mount — to the machine's disks with sfdisk/mkfs, unpacks
# the root-tgz named by `sources:` (or beside the booted squashfs), installs a
# boot loader (extlinux for BIOS on msdos or GPT, a standalone GRUB on the ESP
# for UEFI), writes fstab and the `cloudconfig:` files (the cloud-init MAAS
# datasource with the node's token) into the target.
#
# usage: curtin.sh CONFIG.yaml TARGET_DIR [ROOT_URL]     (exit status 0 = installed)
set -e
CONFIG=$1 TARGET=$2 ROOT_URL_HINT=${3:-}
W=/tmp/curtin; rm -rf "$W"; mkdir -p "$W"
say() { echo "LAB: curtin: $*"; }

# The storage config as one line per item: `key=value|key=value|…`.
awk '
  /^storage:/ { s = 1; next }
  s && /^[^ ]/ { s = 0 }
  !s { next }
  /^[ ]*- / {
    line = $0; sub(/^[ ]*- /, "", line)
    if (line !~ /^[A-Za-z_]+:/) next          # a scalar list entry (devices of a raid, …)
    if (rec != "") print rec
    match($0, /^[ ]*/); ind = RLENGTH + 2     # the indentation of the keys of this item
    rec = ""; inrec = 1; kv(line); next
  }
  /^[ ]+[A-Za-z_]+:/ && inrec {
    match($0, /^[ ]*/); if (RLENGTH != ind) next
    line = $0; sub(/^[ ]+/, "", line); kv(line)
  }
  function kv(l,   k, v) {
    k = l; sub(/:.*/, "", k); v = l; sub(/^[^:]*:[ ]*/, "", v)
    gsub(/^["\047]|["\047]$/, "", v)
    if (v != "") rec = rec (rec == "" ? "" : "|") k "=" v
  }
  END { if (rec != "") print rec }
' "$CONFIG" > "$W/items"
[ -s "$W/items" ] || { say "no storage config"; exit 1; }
bad=$(tr '|' '\n' < "$W/items" | sed -n 's/^type=//p' | grep -v -x -e disk -e partition -e format -e mount | sort -u | tr '\n' ' ')
[ -z "$bad" ] || { say "storage types not supported by the lab installer: $bad"; exit 1; }

get() { # get FIELD RECORD
  echo "$2" | tr '|' '\n' | sed -n "s/^$1=//p" | head -n 1
}
bytes() { # "536870912B", "512M", "4G" → bytes
  echo "$1" | awk '{ v = $0; m = 1
    if (v ~ /[Kk]$/) m = 1024; else if (v ~ /[Mm]$/) m = 1048576
    else if (v ~ /[Gg]$/) m = 1073741824; else if (v ~ /[Tt]$/) m = 1099511627776
    gsub(/[^0-9.]/, "", v); printf "%.0f\n", v * m }'
}
devof() { cat "$W/dev.$1" 2>/dev/null; }

disks() { for b in /sys/block/*; do n=${b##*/}; case "$n" in loop*|ram*|sr*|fd*|zram*) continue ;; esac; [ -e "$b/device" ] && echo "$n"; done; }

resolve_disk() { # RECORD → /dev/… (by path, serial, name, else the only disk)
  p=$(get path "$1"); ser=$(get serial "$1"); nm=$(get name "$1")
  if [ -n "$p" ] && [ -b "$p" ]; then readlink -f "$p"; return; fi
  if [ -n "$ser" ]; then
    for d in $(disks); do
      [ "$(cat /sys/block/$d/serial 2>/dev/null || cat /sys/block/$d/device/serial 2>/dev/null)" = "$ser" ] && { echo "/dev/$d"; return; }
    done
  fi
  [ -n "$nm" ] && [ -b "/dev/$nm" ] && { echo "/dev/$nm"; return; }
  set -- $(disks)
  [ $# -eq 1 ] && { echo "/dev/$1"; return; }
  return 1
}

# 1. disks: wipe and partition.
while read -r r; do
  [ "$(get type "$r")" = disk ] || continue
  id=$(get id "$r")
  dev=$(resolve_disk "$r") || { say "disk $id not found"; exit 1; }
  echo "$dev" > "$W/dev.$id"
  say "disk $id -> $dev"
  wipefs -a -q "$dev" 2>/dev/null || true
  dd if=/dev/zero of="$dev" bs=1M count=2 conv=fsync 2>/dev/null
  pt=$(get ptable "$r")
  [ -n "$pt" ] || continue
  [ "$pt" = msdos ] && label=dos || label=gpt
  echo "$label" > "$W/labelof.${dev##*/}"
  {
    echo "label: $label"
    grep "type=partition" "$W/items" | while read -r p; do
      [ "$(get device "$p")" = "$id" ] || continue
      line=""
      off=$(get offset "$p"); [ -n "$off" ] && line="start=$(( $(bytes "$off") / 512 )), "
      sz=$(get size "$p"); [ -n "$sz" ] && line="${line}size=$(( $(bytes "$sz") / 512 )), "
      case "$(get flag "$p")" in
        boot) if [ $label = gpt ]; then line="${line}type=U"; else line="${line}type=ef"; fi ;;
        bios_grub) line="${line}type=21686148-6449-6E6F-744E-656564454649" ;;
        swap) line="${line}type=S" ;;
        *) line="${line}type=L" ;;
      esac
      echo "$line"
    done
  } > "$W/sfdisk.$id"
  # The last partition's size is the region's arithmetic; let it end where
  # the disk ends instead of failing on a few sectors.
  sfdisk -q --no-reread -f "$dev" < "$W/sfdisk.$id" 2>"$W/sfdisk.err" ||
    { sed -i '$ s/size=[0-9]*, //' "$W/sfdisk.$id"; sfdisk -q -f "$dev" < "$W/sfdisk.$id" 2>"$W/sfdisk.err"; } ||
    { cat "$W/sfdisk.err"; say "partitioning $dev failed"; exit 1; }
  blockdev --rereadpt "$dev" 2>/dev/null || true
done < "$W/items"

# 2. partitions → device nodes.
while read -r r; do
  [ "$(get type "$r")" = partition ] || continue
  d=$(devof "$(get device "$r")"); n=$(get number "$r")
  [ -n "$n" ] || n=$(grep "type=partition" "$W/items" | grep -c "device=$(get device "$r")|" )
  case "$d" in *[0-9]) pd=${d}p$n ;; *) pd=$d$n ;; esac
  i=0; while [ ! -b "$pd" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
  [ -b "$pd" ] || { say "partition $pd did not appear"; exit 1; }
  echo "$pd" > "$W/dev.$(get id "$r")"
  echo "$d $n" > "$W/part.$(get id "$r")"
done < "$W/items"

# 3. filesystems.
while read -r r; do
  [ "$(get type "$r")" = format ] || continue
  v=$(devof "$(get volume "$r")"); fs=$(get fstype "$r"); lb=$(get label "$r")
  say "mkfs $fs $v"
  case "$fs" in
    ext4|ext3|ext2) mkfs.ext4 -q -F -t "$fs" ${lb:+-L "$lb"} "$v" ;;
    fat32|vfat|fat) mkfs.vfat -F 32 ${lb:+-n "$(echo "$lb" | tr a-z A-Z)"} "$v" >/dev/null ;;
    fat16) mkfs.vfat -F 16 "$v" >/dev/null ;;
    swap) mkswap "$v" >/dev/null ;;
    *) say "filesystem $fs is not supported by the lab installer"; exit 1 ;;
  esac
  echo "$v" > "$W/dev.$(get id "$r")"
  echo "$fs" > "$W/fs.$(get id "$r")"
done < "$W/items"

# 4. mounts, shallowest first.
grep "type=mount" "$W/items" | while read -r r; do
  p=$(get path "$r"); echo "$(echo "$p" | tr -cd / | wc -c) $p|$(get device "$r")|$(get options "$r")"
done | sort -n | cut -d' ' -f2- > "$W/mounts"
: > "$W/fstab"
while IFS='|' read -r p fid opts; do
  v=$(devof "$fid"); fs=$(cat "$W/fs.$fid")
  uuid=$(blkid -s UUID -o value "$v" 2>/dev/null || true)
  [ -n "$uuid" ] || uuid=$(blkid "$v" | sed -n 's/.* UUID="\([^"]*\)".*/\1/p')
  if [ "$fs" = swap ]; then echo "UUID=$uuid none swap sw 0 0" >> "$W/fstab"; continue; fi
  mkdir -p "$TARGET$p"
  case "$fs" in fat*|vfat) t=vfat; pass=1 ;; *) t=ext4; pass=1 ;; esac
  [ "$p" = / ] && pass=1 || pass=2
  mount -t "$t" "$v" "$TARGET$p"
  echo "UUID=$uuid $p $t ${opts:-defaults} 0 $pass" >> "$W/fstab"
  [ "$p" = / ] && { echo "$uuid" > "$W/root-uuid"; echo "$fid" > "$W/root-fid"; }
  [ "$p" = /boot/efi ] && echo "$fid" > "$W/esp-fid"
done < "$W/mounts"
[ -s "$W/root-uuid" ] || { say "no / in the storage config"; exit 1; }

# 5. the image: curtin `sources:` (tgz) or root-tgz beside the squashfs.
SRC=$(sed -n '/^sources:/,/^[^ ]/s/^[ ]*uri:[ ]*//p' "$CONFIG" | head -n 1 | tr -d "\"'")
SRC=${SRC#tgz:}
[ -n "$SRC" ] || SRC=$ROOT_URL_HINT
[ -n "$SRC" ] || { say "no image source"; exit 1; }
say "extracting $SRC"
wget -q -O - "$SRC" | tar -xzf - -C "$TARGET" || { say "extracting the image failed (disk full?)"; exit 1; }
cp "$W/fstab" "$TARGET/etc/fstab"

# 6. boot loader.
KVER=$(ls "$TARGET/boot" | sed -n 's/^vmlinuz-//p' | head -n 1)
[ -n "$KVER" ] || { say "the image has no /boot/vmlinuz-<version>"; exit 1; }
ROOT_UUID=$(cat "$W/root-uuid")
APPEND="root=UUID=$ROOT_UUID ro console=tty0 console=ttyS0,115200"
if [ -d /sys/firmware/efi ]; then
  [ -s "$W/esp-fid" ] || { say "UEFI machine without /boot/efi"; exit 1; }
  mkdir -p "$TARGET/boot/efi/EFI/BOOT" "$TARGET/boot/grub"
  cp /lab/BOOTX64.EFI "$TARGET/boot/efi/EFI/BOOT/BOOTX64.EFI"
  printf 'set timeout=0\nlinux /boot/vmlinuz-%s %s\ninitrd /boot/initrd.img-%s\nboot\n' "$KVER" "$APPEND" "$KVER" \
    > "$TARGET/boot/grub/lab.cfg"
  say "boot loader: GRUB on the ESP"
else
  mkdir -p "$TARGET/boot/extlinux"
  printf 'DEFAULT debian\nPROMPT 0\nTIMEOUT 0\nLABEL debian\n  LINUX /boot/vmlinuz-%s\n  INITRD /boot/initrd.img-%s\n  APPEND %s\n' \
    "$KVER" "$KVER" "$APPEND" > "$TARGET/boot/extlinux/extlinux.conf"
  extlinux --install "$TARGET/boot/extlinux" >/dev/null 2>&1 || { say "extlinux failed"; exit 1; }
  rfid=$(cat "$W/root-fid")
  rrec=$(grep -E "(^|[|])id=$rfid([|]|\$)" "$W/items" | head -n 1)
  set -- $(cat "$W/part.$(get volume "$rrec")" 2>/dev/null)
  [ $# -eq 2 ] || { say "/ is not on a partition: the lab installer needs one for extlinux"; exit 1; }
  disk=$1 num=$2
  if [ "$(cat "$W/labelof.${disk##*/}")" = gpt ]; then
    dd if=/lab/gptmbr.bin of="$disk" bs=440 count=1 conv=notrunc 2>/dev/null
    sfdisk -q --part-attrs "$disk" "$num" LegacyBIOSBootable
  else
    dd if=/lab/mbr.bin of="$disk" bs=440 count=1 conv=notrunc 2>/dev/null
    sfdisk -q --activate "$disk" "$num"
  fi
  say "boot loader: extlinux on $disk partition $num"
fi

# 7. cloud-init configuration for the installed system (`cloudconfig:`).
awk -v T="$TARGET" '
  /^cloudconfig:/ { s = 1; next }
  s && /^[^ ]/ { s = 0 }
  !s { next }
  /^  [^ ]/ { flush(); next }
  /^    content: \|/ { mode = "block"; next }
  /^    content: / { v = $0; sub(/^    content: /, "", v); gsub(/^"|"$/, "", v); gsub(/\\n/, "\n", v); content = v "\n"; mode = ""; next }
  /^    path: / { path = $0; sub(/^    path: /, "", path); gsub(/^"|"$/, "", path); mode = ""; next }
  mode == "block" { l = $0; sub(/^      /, "", l); content = content l "\n"; next }
  function flush(   d) {
    if (path != "") { f = T path; d = f; sub(/\/[^\/]*$/, "", d); system("mkdir -p \"" d "\""); printf "%s", content > f; close(f) }
    path = ""; content = ""; mode = ""
  }
  END { flush() }
' "$CONFIG"
say "installed: root UUID $ROOT_UUID, kernel $KVER at $(cut -d" " -f1 /proc/uptime) s"
