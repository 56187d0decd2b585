#!/bin/sh
# The ephemeral environment, run by the initrd inside the squashfs root. It
# does what MAAS's ephemeral Ubuntu does through cloud-init and
# maas-run-remote-scripts, speaking the same metadata API:
#
#   enlist      no token in the preseed: is_registered?, anonymous machine
#               create (architecture, MAC, BMC details), get_preseed for the
#               new node's token, signal COMMISSIONING, then commission
#   commission  maas-scripts from the metadata API; hardware results from /proc
#               and /sys uploaded with op=signal (WORKING per script, then OK);
#               `wipe-disks` erases the disks (quick: both ends of each disk)
#   deploy      (metadata_url …/curtin) the curtin config from the metadata API,
#               installed by /lab/curtin.sh, curtin events on the status
#               webhook, netboot_off, reboot
# Every run ends with cloud-init's `modules-final` finish event and the
# preseed's power_state (poweroff or reboot).
. /lab/maas.sh
export PATH=/usr/local/bin:/bin:/sbin:/usr/bin:/usr/sbin
IFACE=$(cat /run/lab/bootif)
MAC=$(cat "/sys/class/net/$IFACE/address")
PRESEED_URL=
for w in $(cat /proc/cmdline); do
  case "$w" in cloud-config-url=*) PRESEED_URL=${w#cloud-config-url=} ;; esac
done
say "ephemeral environment $(cat /lab/VERSION) on $IFACE $MAC"
# Installer self-test (tests/lab, no region): `lab.install=<curtin config URL>`
# runs the installer against this machine's disks and powers off.
for w in $(cat /proc/cmdline); do
  case "$w" in
    lab.install=*)
      wget -q -O /tmp/curtin.yaml "${w#lab.install=}" || { say "FAIL cannot fetch ${w#lab.install=}"; exit 1; }
      hint=
      for v in $(cat /proc/cmdline); do case "$v" in root=squash:*) u=${v#root=squash:}; hint=${u%/*}/root-tgz ;; esac; done
      mkdir -p /target
      if /lab/curtin.sh /tmp/curtin.yaml /target "$hint"; then
        sync; umount /target/boot/efi 2>/dev/null; umount /target; say "INSTALL-OK"
      else
        say "INSTALL-FAILED"
      fi
      exit 0 ;;
  esac
done
[ -n "$PRESEED_URL" ] || { say "FAIL no cloud-config-url on the kernel command line"; exit 1; }
http_get "$PRESEED_URL" /run/lab/preseed || { say "FAIL cannot read the preseed"; exit 1; }
load_preseed /run/lab/preseed
[ -n "$METADATA_URL" ] || { say "FAIL the preseed has no datasource.MAAS.metadata_url"; exit 1; }
MAAS_ROOT=${METADATA_URL%%/metadata*}            # http://<rack>:5248/MAAS
POWER_STATE=$(sed -n '/^power_state:/,/^[^ ]/s/^[ ]*mode:[ ]*//p' /run/lab/preseed | head -n 1)

finish() { # RESULT DESCRIPTION: cloud-init's last event, then the power state
  event cloudinit modules-final finish "$2" "$1"
  sync
  case "$POWER_STATE" in
    reboot) say "rebooting"; reboot -f ;;
    *) say "powering off"; poweroff -f ;;
  esac
}

# --- BMC details: SMBIOS OEM strings the lab gives each VM (in-band detection) --
# The per-entry files need the dmi-sysfs module; the raw table is always there.
# Control bytes become line ends by explicit octal ranges: busybox 1.35's
# `tr -c '[:print:]'` complements the literal characters, not the class.
bmc_params() {
  {
    for f in /sys/firmware/dmi/entries/11-*/raw; do
      [ -f "$f" ] && tr '\000-\037\177-\377' '\n' < "$f"
    done
    [ -r /sys/firmware/dmi/tables/DMI ] && tr '\000-\037\177-\377' '\n' < /sys/firmware/dmi/tables/DMI
  } | sed -n 's/^maas-power: //p' | head -n 1
}

# --- what udev would record ----------------------------------------------------
# No udev runs here; lsblk reads a disk's serial from udev's database, so the
# entries udev writes for disks (ID_SERIAL from the kernel's serial file) are
# written by hand, as MAAS's ephemeral Ubuntu has them.
udev_db() {
  mkdir -p /run/udev/data
  for b in /sys/block/*; do
    [ -r "$b/serial" ] && [ -r "$b/dev" ] || continue
    s=$(cat "$b/serial"); [ -n "$s" ] || continue
    printf 'I:1\nE:ID_SERIAL=%s\nE:ID_SERIAL_SHORT=%s\n' "$s" "$s" > "/run/udev/data/b$(cat "$b/dev")"
  done
}
udev_db

# --- enlistment -------------------------------------------------------------------
enlist() {
  say "enlisting $MAC"
  TK=
  wget -q -O /tmp/registered "$MAAS_ROOT/api/2.0/machines/?op=is_registered&mac_address=$MAC" || true
  if [ "$(cat /tmp/registered 2>/dev/null)" = true ]; then
    say "already registered; powering off"; finish SUCCESS "already registered"
  fi
  set -- "architecture=amd64/generic" "mac_addresses=$MAC"
  bmc=$(bmc_params)
  if [ -n "$bmc" ]; then
    # `power_type {json parameters}`
    set -- "$@" "power_type=${bmc%% *}" "power_parameters=${bmc#* }"
  fi
  multipart /tmp/create.body "$@"
  http_post "$MAAS_ROOT/api/2.0/machines/" /tmp/create.body "multipart/form-data; boundary=$BOUNDARY" /tmp/created ||
    { say "FAIL anonymous machine create"; exit 1; }
  SYSTEM_ID=$(sed -n 's/.*"system_id": *"\([^"]*\)".*/\1/p' /tmp/created | head -n 1)
  [ -n "$SYSTEM_ID" ] || { say "FAIL no system_id in $(head -c 300 /tmp/created)"; exit 1; }
  say "enlisted as $SYSTEM_ID"
  http_get "$METADATA_URL/latest/by-id/$SYSTEM_ID/?op=get_preseed" /run/lab/preseed ||
    { say "FAIL cannot read the node preseed"; exit 1; }
  load_preseed /run/lab/preseed
  [ -n "$TK" ] || { say "FAIL the node preseed has no token"; exit 1; }
  signal COMMISSIONING
}

# --- commissioning, testing, erasing --------------------------------------------------
quick_erase() {
  for b in /sys/block/*; do
    d=${b##*/}; case "$d" in loop*|ram*|sr*|fd*) continue ;; esac
    [ -e "$b/device" ] || continue
    sectors=$(cat "$b/size")
    say "quick erase /dev/$d ($((sectors / 2048)) MiB)"
    dd if=/dev/zero of="/dev/$d" bs=1M count=2 conv=fsync 2>/dev/null
    [ "$sectors" -gt 8192 ] && dd if=/dev/zero of="/dev/$d" bs=512 seek=$((sectors - 4096)) count=4096 conv=fsync 2>/dev/null
    echo "/dev/$d: zeroed the first 2 MiB and the last 2 MiB"
  done
}

# Results this environment produces natively (MAAS's builtin scripts are
# Python; these write the same data the region parses).
native_result() { # NAME OUTFILE → 0 when handled
  case "$1" in
    *maas-01-commissioning|maas-machine-resources) /lab/hardware.sh > "$2" ;;
    *network-interfaces*) ip -o link > "$2"; ip -o addr >> "$2" ;;
    *list-modaliases*) cat /sys/bus/*/devices/*/modalias 2>/dev/null | sort -u > "$2" ;;
    *block-devices*|*lsblk*) cat /proc/partitions > "$2" ;;
    *cpuinfo*) cat /proc/cpuinfo > "$2" ;;
    *meminfo*) cat /proc/meminfo > "$2" ;;
    wipe-disks*|*erase*) quick_erase > "$2" ;;
    *) return 1 ;;
  esac
}

# run_script FILE: a shell script the region handed out. Debian's busybox sh
# runs its own applets before anything on PATH (`ip` would be busybox's,
# without -j), so the real tools in /usr/local/bin become shell functions
# first, then the script is sourced.
run_script() {
  sh -c 'for t in /usr/local/bin/*; do [ -x "$t" ] && eval "${t##*/}() { $t \"\$@\"; }"; done; . "$1"' sh "$1"
}

commission() {
  say "commissioning with $METADATA_URL"
  mkdir -p /tmp/scripts && cd /tmp/scripts
  : > /tmp/scripts.list
  if http_get "$METADATA_URL/latest/maas-scripts" /tmp/scripts.tar && [ -s /tmp/scripts.tar ]; then
    # Plain tar (maasd) or xz-compressed (MAAS); busybox's `xz -t` says yes
    # to anything, so the plain read is tried first.
    tar -xf /tmp/scripts.tar 2>/dev/null || xz -dc /tmp/scripts.tar | tar -xf -
    # index.json (pretty-printed or not): every script has a `path` under
    # commissioning/ or testing/; MAAS's own index also has script_result_id.
    idx=$(find /tmp/scripts -name index.json | head -n 1)
    if [ -n "$idx" ]; then
      tr -d '\n' < "$idx" | grep -o '"path": *"[^"]*"' | sed 's/.*"\([^"]*\)"$/\1/' |
        grep -E '^(commissioning|testing)/' | while read -r p; do echo "${p##*/} $p"; done > /tmp/scripts.list
    fi
  fi
  # No index (or an empty tarball): upload the builtin results by name.
  [ -s /tmp/scripts.list ] || printf '%s\n' "50-maas-01-commissioning" "40-maas-01-network-interfaces" \
    "maas-list-modaliases" > /tmp/scripts.list
  failed=
  while read -r name path srid; do
    out=/tmp/out.$name
    rc=0
    script=${path:+$(dirname "$idx")/$path}
    # The script the region handed out when this environment can run it (a
    # shell script); otherwise the same data produced natively.
    if [ -n "$script" ] && [ -f "$script" ] && head -n 1 "$script" | grep -q '^#!/bin/sh\|^#!/bin/bash\|^#!/usr/bin/env sh'; then
      run_script "$script" > "$out" 2>"$out.err" </dev/null || rc=$?
    elif native_result "$name" "$out"; then :
    else
      echo "not run: the lab's ephemeral environment has no Python" > "$out"
    fi
    errs=
    if [ -s "$out.err" ]; then errs="@$name.err=$out.err"; fi
    if [ $rc -ne 0 ]; then
      failed="$failed $name"
      say "$name failed ($rc): $(head -c 400 "$out.err" | tr '\n' ' ')"
    fi
    signal WORKING ${srid:+script_result_id=$srid} "exit_status=$rc" "@$name=$out" $errs
  done < /tmp/scripts.list
  # MAAS's ephemeral Ubuntu always uploads the machine-resources JSON
  # (50-maas-01-commissioning); the region learns the firmware (BIOS/UEFI)
  # from it, which an iPXE ROM's netboot request does not tell.
  if ! grep -qE '^50-maas-01-commissioning( |$)' /tmp/scripts.list; then
    /lab/hardware.sh > /tmp/out.resources
    signal WORKING "exit_status=0" "@50-maas-01-commissioning=/tmp/out.resources"
  fi
  if [ -n "$failed" ]; then signal FAILED "error=scripts failed:$failed"; finish FAIL "scripts failed:$failed"; fi
  signal OK
  finish SUCCESS "commissioning done"
}

# --- deployment ---------------------------------------------------------------------------
deploy() {
  say "deploying with $METADATA_URL"
  event curtin cmd-install start "curtin command install"
  : > /tmp/install.log
  fail_install() {
    say "FAIL install: $1"
    echo "$1" >> /tmp/install.log
    event curtin cmd-install finish "curtin command install: $1" FAIL /tmp/install.log
    finish FAIL "$1"
  }
  # The curtin configuration: MAAS serves it as the curtin user-data.
  http_get "$METADATA_URL/latest/user-data" /tmp/curtin.yaml || fail_install "no curtin user-data"
  grep -q '^storage:' /tmp/curtin.yaml || fail_install "the curtin user-data has no storage config"
  ROOT_HINT=
  for w in $(cat /proc/cmdline); do
    case "$w" in root=squash:*) u=${w#root=squash:}; ROOT_HINT=${u%/*}/root-tgz ;; esac
  done
  event curtin cmd-install/stage-partitioning start "configuring storage"
  mkdir -p /target
  if /lab/curtin.sh /tmp/curtin.yaml /target "$ROOT_HINT" >> /tmp/install.log 2>&1; then
    cat /tmp/install.log
    event curtin cmd-install/stage-partitioning finish "storage and image installed" SUCCESS
  else
    cat /tmp/install.log
    fail_install "$(grep 'LAB: curtin:' /tmp/install.log | tail -n 1 | sed 's/^LAB: curtin: //')"
  fi
  # Fallback datasource config when the curtin config carried none.
  if ! grep -rqs 'datasource' /target/etc/cloud/cloud.cfg.d/90_maas_cloud_config.cfg; then
    printf 'datasource:\n  MAAS:\n    metadata_url: %s/\n    consumer_key: %s\n    token_key: %s\n    token_secret: %s\n' \
      "${METADATA_URL%/curtin}" "$CK" "$TK" "$TS" > /target/etc/cloud/cloud.cfg.d/90_maas_cloud_config.cfg
    echo 'datasource_list: [ MAAS ]' > /target/etc/cloud/cloud.cfg.d/90_maas_datasource.cfg
  fi
  sync
  umount -r /target/boot/efi 2>/dev/null || true
  umount /target 2>/dev/null || true
  event curtin cmd-install finish "curtin command install" SUCCESS /tmp/install.log
  # late_commands: netboot off (anonymous, by-id), as curtin runs it.
  off=$(grep -o 'http[^ "]*/by-id/[^ "]*' /tmp/curtin.yaml | head -n 1)
  [ -n "$off" ] || off=$METADATA_URL/latest/by-id/$(cat /run/lab/system_id 2>/dev/null)/
  off=$(echo "$off" | sed 's#/metadata/curtin/#/metadata/#')
  wget -q -O /dev/null --post-data "op=netboot_off" "$off" && say "netboot off" || say "netboot_off failed ($off)"
  finish SUCCESS "deployment done"
}

case "$METADATA_URL" in
  */curtin) deploy ;;
  *)
    [ -n "$TK" ] || enlist
    commission ;;
esac
