#!/bin/bash
# TFTP throughput: maas-rs (maas-boot's server, release build) against tftpd-hpa,
# dnsmasq and atftpd, same namespaces, same files, same clients, one run.
# Clients: curl (512 / --tftp-blksize 1468), tftp-hpa (512), atftp (1468, and
# 1468 + windowsize 16 — atftpd is the only peer that negotiates windowsize).
# Then 50 and 500 concurrent curl downloads of the 4 MiB file.
# Needs root. Installs its peers (apt) if missing; atftpd conflicts with
# tftpd-hpa in Debian, so its .deb is unpacked under $WORK instead.
# Env: REPS=3 SERVERS="maas-rs tftpd-hpa dnsmasq atftpd" CONCS="50 500"
#      MAAS_RS_BIN=<boot_serve> (else built here); BASELINE_BIN=<older boot_serve>
#      with "maas-rs-base" in SERVERS times that build too (an A/B)
#      CLIENTS="curl-512 curl-1468 tftp-hpa atftp-1468 atftp-1468-w16"
# Output: $OUT (default bench/tftp/results/) single.csv, concurrent.csv, summary.md
source "$(dirname "$0")/../common.sh"
OUT="${OUT:-$BENCH_DIR/tftp/results}"; mkdir -p "$OUT"
SERVERS="${SERVERS:-maas-rs tftpd-hpa dnsmasq atftpd}"
CONCS="${CONCS:-50 500}"
CLIENTS="${CLIENTS:-curl-512 curl-1468 tftp-hpa atftp-1468 atftp-1468-w16}"
source "$BENCH_DIR/tftp/servers.sh"

xfer() {  # $1 client variant, $2 file -> seconds or FAIL
  local t0 t1 rc
  t0=$(date +%s.%N)
  case $1 in
    curl-512)  cli timeout 300 curl -sS -o /dev/null "tftp://$SRV_IP/$2" ;;
    curl-1468) cli timeout 300 curl -sS -o /dev/null --tftp-blksize 1468 "tftp://$SRV_IP/$2" ;;
    tftp-hpa)  cli timeout 300 tftp -m binary $SRV_IP -c get "$2" /dev/null ;;
    atftp-1468) cli timeout 300 atftp --get -r "$2" -l /dev/null --option "blksize 1468" $SRV_IP ;;
    atftp-1468-w16) cli timeout 300 atftp --get -r "$2" -l /dev/null --option "blksize 1468" --option "windowsize 16" $SRV_IP ;;
  esac >/dev/null 2>>"$WORK/xfer.err"
  rc=$?; t1=$(date +%s.%N)
  [ $rc -eq 0 ] || { echo FAIL; return; }
  awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.3f", b-a}'
}

CSV="$OUT/single.csv"; echo "server,client,file,rep,seconds,MBps,srv_cpu_s,load1" >"$CSV"
: >"$OUT/windowsize.txt"
# Repetitions outermost, servers inside: background load (the machine may be
# shared) then hits every server alike within a repetition.
for rep in $(seq $REPS); do
  for s in $SERVERS; do
    pid=$(start $s); sleep 1
    kill -0 $pid 2>/dev/null || { echo "$s did not start"; cat "$WORK/srv-$s/log"; continue; }
    if [ $rep = 1 ]; then
      # Windowsize check: does the server's OACK carry it?
      echo "== $s" >>"$OUT/windowsize.txt"
      cli timeout 60 atftp --get -r 4M.bin -l /dev/null --option "blksize 1468" --option "windowsize 16" \
        --trace $SRV_IP 2>&1 | grep -m1 OACK >>"$OUT/windowsize.txt"
    fi
    for f in 64M.bin 4M.bin; do
      size=$(stat -c %s "$ROOT/$f")
      for c in $CLIENTS; do
        c0=$(cpu_s $pid); l=$(loadavg); sec=$(xfer $c $f); c1=$(cpu_s $pid)
        mbps=$(awk -v s="$sec" -v b="$size" 'BEGIN{ if (s+0>0) printf "%.1f", b/1e6/s; else print "NA"}')
        echo "$s,$c,$f,$rep,$sec,$mbps,$(awk -v a=$c0 -v b=$c1 'BEGIN{printf "%.2f", b-a}'),$l" | tee -a "$CSV"
      done
    done
    stop_pid $pid
  done
done

CSV2="$OUT/concurrent.csv"; echo "server,n,rep,ok,wall_s,aggregate_MBps,srv_cpu_s,load1" >"$CSV2"
for rep in $(seq $REPS); do
  for s in $SERVERS; do
    pid=$(start $s); sleep 1
    for n in $CONCS; do
      c0=$(cpu_s $pid); l=$(loadavg); t0=$(date +%s.%N); pids=()
      for i in $(seq $n); do
        cli timeout 300 curl -sS -o /dev/null --tftp-blksize 1468 "tftp://$SRV_IP/4M.bin" 2>>"$WORK/conc.err" &
        pids+=($!)
      done
      ok=0; for p in "${pids[@]}"; do wait $p && ok=$((ok + 1)); done
      t1=$(date +%s.%N); c1=$(cpu_s $pid)
      awk -v s=$s -v n=$n -v r=$rep -v ok=$ok -v a=$t0 -v b=$t1 -v c0=$c0 -v c1=$c1 -v l=$l \
        'BEGIN{w=b-a; printf "%s,%d,%d,%d,%.3f,%.1f,%.2f,%s\n", s,n,r,ok,w,ok*4194304/1e6/w,c1-c0,l}' | tee -a "$CSV2"
    done
    stop_pid $pid
  done
done

python3 "$BENCH_DIR/tftp/summarize.py" "$OUT" | tee "$OUT/summary.md"
