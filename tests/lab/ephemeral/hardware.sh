#!/bin/sh
# Hardware discovery from /proc and /sys, written as the JSON MAAS's
# `50-maas-01-commissioning` script uploads (LXD's machine resources format:
# cpu, memory, storage, network, pci, system) plus the `networks` section.
# usage: hardware.sh > resources.json

hex4() { v=$(cat "$1" 2>/dev/null); v=${v#0x}; echo "$v"; }
rd() { cat "$1" 2>/dev/null | head -n 1; }
js() { printf '"%s"' "$(printf '%s' "$1" | sed -e 's/\\/\\\\/g' -e 's/"/\\"/g')"; }

cpu_json() {
  model=$(sed -n 's/^model name[[:space:]]*:[[:space:]]*//p' /proc/cpuinfo | head -n 1)
  vendor=$(sed -n 's/^vendor_id[[:space:]]*:[[:space:]]*//p' /proc/cpuinfo | head -n 1)
  mhz=$(sed -n 's/^cpu MHz[[:space:]]*:[[:space:]]*//p' /proc/cpuinfo | head -n 1 | cut -d. -f1)
  flags=$(sed -n 's/^flags[[:space:]]*:[[:space:]]*//p' /proc/cpuinfo | head -n 1)
  total=0 threads=""
  for c in /sys/devices/system/cpu/cpu[0-9]*; do
    id=${c##*/cpu}
    core=$(rd "$c/topology/core_id"); core=${core:-$id}
    online=true; [ "$(rd "$c/online")" = 0 ] && online=false
    threads="$threads{\"core\": $core, \"threads\": [{\"id\": $id, \"thread\": 0, \"online\": $online, \"numa_node\": 0}], \"frequency\": ${mhz:-0}},"
    total=$((total + 1))
  done
  printf '"cpu": {"architecture": "x86_64", "sockets": [{"socket": 0, "name": %s, "vendor": %s, "cores": [%s], "frequency": %s, "frequency_turbo": 0}], "total": %s, "flags": %s}' \
    "$(js "$model")" "$(js "$vendor")" "${threads%,}" "${mhz:-0}" "$total" "$(js "$flags")"
}

memory_json() {
  kb=$(awk '/^MemTotal:/{print $2}' /proc/meminfo)
  free=$(awk '/^MemAvailable:/{print $2}' /proc/meminfo)
  printf '"memory": {"total": %s, "used": %s, "nodes": [{"numa_node": 0, "total": %s, "used": %s}], "hugepages_total": 0, "hugepages_used": 0, "hugepages_size": 2097152}' \
    "$((kb * 1024))" "$(((kb - free) * 1024))" "$((kb * 1024))" "$(((kb - free) * 1024))"
}

storage_json() {
  disks="" n=0
  for b in /sys/block/*; do
    name=${b##*/}
    case "$name" in loop*|ram*|sr*|fd*|zram*|dm-*|md*) continue ;; esac
    [ -e "$b/device" ] || continue
    size=$(( $(rd "$b/size") * 512 ))
    bs=$(rd "$b/queue/logical_block_size")
    rot=true; [ "$(rd "$b/queue/rotational")" = 0 ] && rot=false
    rem=false; [ "$(rd "$b/removable")" = 1 ] && rem=true
    ro=false; [ "$(rd "$b/ro")" = 1 ] && ro=true
    serial=$(rd "$b/serial"); [ -z "$serial" ] && serial=$(rd "$b/device/serial")
    model=$(rd "$b/device/model")
    case "$name" in vd*) type=virtio ;; nvme*) type=nvme ;; *) type=scsi ;; esac
    pci=$(basename "$(readlink -f "$b/device/..")" 2>/dev/null)
    parts=""
    for p in "$b"/"$name"*; do
      [ -e "$p/partition" ] || continue
      parts="$parts{\"id\": $(js "${p##*/}"), \"device\": $(js "$(rd "$p/dev")"), \"read_only\": false, \"size\": $(( $(rd "$p/size") * 512 )), \"partition\": $(rd "$p/partition")},"
    done
    disks="$disks{\"id\": $(js "$name"), \"device\": $(js "$(rd "$b/dev")"), \"model\": $(js "$model"), \"type\": \"$type\", \"read_only\": $ro, \"size\": $size, \"removable\": $rem, \"wwn\": $(js "$(rd "$b/wwid")"), \"numa_node\": 0, \"device_path\": $(js "pci-$pci"), \"block_size\": ${bs:-512}, \"firmware_version\": \"\", \"rpm\": 0, \"serial\": $(js "$serial"), \"device_id\": $(js "$serial"), \"partitions\": [${parts%,}], \"rotational\": $rot},"
    n=$((n + 1))
  done
  printf '"storage": {"disks": [%s], "total": %s}' "${disks%,}" "$n"
}

network_json() {
  cards="" n=0
  for d in /sys/class/net/*; do
    name=${d##*/}
    [ -e "$d/device" ] || continue
    dev=$(readlink -f "$d/device")
    pci=$(basename "$dev")
    # virtio NICs hang off a virtio bus device under the PCI function.
    case "$pci" in virtio*) pci=$(basename "$(dirname "$dev")") ;; esac
    pcidir=/sys/bus/pci/devices/$pci
    driver=$(basename "$(readlink -f "$d/device/driver")")
    link=false; [ "$(rd "$d/carrier")" = 1 ] && link=true
    speed=$(rd "$d/speed"); case "$speed" in ''|-*) speed=0 ;; esac
    cards="$cards{\"driver\": $(js "$driver"), \"driver_version\": \"\", \"pci_address\": $(js "$pci"), \"vendor_id\": $(js "$(hex4 "$pcidir/vendor")"), \"product_id\": $(js "$(hex4 "$pcidir/device")"), \"numa_node\": 0, \"ports\": [{\"id\": $(js "$name"), \"address\": $(js "$(rd "$d/address")"), \"port\": 0, \"protocol\": \"ethernet\", \"auto_negotiation\": false, \"link_detected\": $link, \"link_speed\": $speed, \"link_duplex\": \"full\"}]},"
    n=$((n + 1))
  done
  printf '"network": {"cards": [%s], "total": %s}' "${cards%,}" "$n"
}

pci_json() {
  devs="" n=0
  for p in /sys/bus/pci/devices/*; do
    drv=""; [ -e "$p/driver" ] && drv=$(basename "$(readlink -f "$p/driver")")
    devs="$devs{\"driver\": $(js "$drv"), \"driver_version\": \"\", \"numa_node\": 0, \"pci_address\": $(js "${p##*/}"), \"vendor_id\": $(js "$(hex4 "$p/vendor")"), \"product_id\": $(js "$(hex4 "$p/device")"), \"class\": $(js "$(hex4 "$p/class")"), \"iommu_group\": 0, \"vpd\": {}},"
    n=$((n + 1))
  done
  printf '"pci": {"devices": [%s], "total": %s}' "${devs%,}" "$n"
}

system_json() {
  fw=bios; [ -d /sys/firmware/efi ] && fw=uefi
  printf '"system": {"uuid": %s, "vendor": %s, "product": %s, "family": "", "version": %s, "sku": "", "serial": %s, "type": "virtual-machine", "firmware": {"vendor": %s, "date": %s, "version": %s, "type": "%s"}, "chassis": {"vendor": %s, "type": "Other", "serial": "", "version": ""}, "motherboard": {"vendor": "", "product": "", "serial": "", "version": ""}}' \
    "$(js "$(rd /sys/class/dmi/id/product_uuid)")" "$(js "$(rd /sys/class/dmi/id/sys_vendor)")" \
    "$(js "$(rd /sys/class/dmi/id/product_name)")" "$(js "$(rd /sys/class/dmi/id/product_version)")" \
    "$(js "$(rd /sys/class/dmi/id/product_serial)")" "$(js "$(rd /sys/class/dmi/id/bios_vendor)")" \
    "$(js "$(rd /sys/class/dmi/id/bios_date)")" "$(js "$(rd /sys/class/dmi/id/bios_version)")" "$fw" \
    "$(js "$(rd /sys/class/dmi/id/chassis_vendor)")"
}

networks_json() {
  out=""
  for d in /sys/class/net/*; do
    name=${d##*/}
    addrs=""
    for a in $(ip -o addr show dev "$name" 2>/dev/null | awk '{print $3 "|" $4}'); do
      fam=${a%%|*}; cidr=${a#*|}
      case "$fam" in inet) f=inet ;; inet6) f=inet6 ;; *) continue ;; esac
      addrs="$addrs{\"family\": \"$f\", \"address\": $(js "${cidr%/*}"), \"netmask\": $(js "${cidr#*/}"), \"scope\": \"global\"},"
    done
    state=down; [ "$(rd "$d/operstate")" = up ] && state=up
    type=broadcast; [ "$name" = lo ] && type=loopback
    out="$out$(js "$name"): {\"hwaddr\": $(js "$(rd "$d/address")"), \"type\": \"$type\", \"state\": \"$state\", \"mtu\": $(rd "$d/mtu"), \"addresses\": [${addrs%,}], \"bond\": null, \"bridge\": null, \"vlan\": null},"
  done
  printf '"networks": {%s}' "${out%,}"
}

printf '{"api_version": "1.0", "api_extensions": ["resources", "resources_v2", "resources_system"], "environment": {"kernel": %s, "kernel_architecture": "x86_64", "kernel_version": %s, "os_name": "maas-rs lab ephemeral", "os_version": "1", "server": "maas-machine-resources"},\n "resources": {%s,\n %s,\n %s,\n %s,\n %s,\n %s},\n %s}\n' \
  "$(js "$(uname -s)")" "$(js "$(uname -r)")" "$(cpu_json)" "$(memory_json)" "$(storage_json)" \
  "$(network_json)" "$(pci_json)" "$(system_json)" "$(networks_json)"
