# Shared by bench/tftp/run.sh and concurrent-cpu.sh (source after ../common.sh):
# installs the peers (apt; atftpd conflicts with tftpd-hpa in Debian, so its
# .deb is unpacked under $WORK), makes the served files, brings the namespaces
# up and defines `start SERVER` (-> PID). EXTRA_PKGS: more Debian packages.
need=(); for p in curl tftp-hpa atftp dnsmasq-base tftpd-hpa ${EXTRA_PKGS:-}; do
  dpkg-query -W -f='${Status}' $p 2>/dev/null | grep -q 'ok installed' || need+=($p); done
((${#need[@]})) && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"
if [ ! -x "$WORK/atftpd/usr/sbin/atftpd" ]; then
  (cd "$WORK" && apt-get download -q atftpd >/dev/null && dpkg-deb -x atftpd_*.deb atftpd)
fi
ATFTPD="$WORK/atftpd/usr/sbin/atftpd"
MAAS_RS=$(maas_rs_bin)
ROOT="$DATA/tftp"; mkdir -p "$ROOT"; chmod 755 "$ROOT"
[ -s "$ROOT/64M.bin" ] || head -c $((64 << 20)) /dev/urandom >"$ROOT/64M.bin"
[ -s "$ROOT/4M.bin" ] || head -c $((4 << 20)) /dev/urandom >"$ROOT/4M.bin"
chmod 644 "$ROOT"/*.bin
trap 'ns_down' EXIT
ns_up

start() {  # $1 server -> PID
  local d="$WORK/srv-$1"; mkdir -p "$d"
  case $1 in
    # All benchmark clients share one address; lift the per-client cap (64)
    # to the peers' level so 500 concurrent downloads can run.
    maas-rs) srv_start "$d/log" "$MAAS_RS" --tftp $SRV_IP:69 --root "$ROOT" --max-per-client 1000 ;;
    maas-rs-base) srv_start "$d/log" "$BASELINE_BIN" --tftp $SRV_IP:69 --root "$ROOT" --max-per-client 1000 ;;
    tftpd-hpa) srv_start "$d/log" in.tftpd -L -s -u nobody -a $SRV_IP:69 "$ROOT" ;;
    dnsmasq) srv_start "$d/log" dnsmasq --no-daemon --conf-file=/dev/null --port=0 \
        --interface=mrsb-s0 --bind-interfaces --enable-tftp --tftp-root="$ROOT" \
        --tftp-max=1000 --log-facility="$d/syslog" --pid-file= ;;
    atftpd) srv_start "$d/log" "$ATFTPD" --daemon --no-fork --user nobody.nogroup \
        --bind-address $SRV_IP --port 69 --maxthread 1000 --logfile "$d/atftpd.log" "$ROOT" ;;
  esac
}

