#!/bin/sh
# The MAAS client side of the ephemeral environment, in busybox sh: OAuth 1.0
# PLAINTEXT signing, the metadata API (meta-data, maas-scripts, op=signal with
# multipart result files), the status webhook (cloud-init/curtin event JSON)
# and reading the node's credentials out of its preseed (#cloud-config).
# Sourced by main.sh; every function logs to the console with a `LAB:` prefix.

say() { echo "LAB: $*"; }
uptime_s() { cut -d' ' -f1 /proc/uptime; }

# yaml_get KEY FILE: the first scalar `KEY: value` anywhere in a block-style
# YAML document, quotes removed. Enough for the preseeds maasd renders.
yaml_get() {
  sed -n "s/^[[:space:]]*$1:[[:space:]]*//p" "$2" | head -n 1 | sed -e 's/^"\(.*\)"$/\1/' -e "s/^'\(.*\)'$/\1/"
}

# load_preseed FILE: sets METADATA_URL, CK, TK, TS (empty when anonymous) and
# REPORT_URL from datasource.MAAS and reporting.maas.
load_preseed() {
  METADATA_URL=$(yaml_get metadata_url "$1")
  METADATA_URL=${METADATA_URL%/}
  CK=$(yaml_get consumer_key "$1")
  TK=$(yaml_get token_key "$1")
  TS=$(yaml_get token_secret "$1")
  REPORT_URL=$(yaml_get endpoint "$1")
}

# The OAuth header MAAS's scripts send: PLAINTEXT, signature "&<token secret>"
# (the consumer secret is empty), a fresh nonce and the current time.
oauth_header() {
  nonce=$(cat /proc/sys/kernel/random/uuid | tr -d -)
  echo "Authorization: OAuth realm=\"OAuth\", oauth_version=\"1.0\", oauth_signature_method=\"PLAINTEXT\", oauth_consumer_key=\"$CK\", oauth_token=\"$TK\", oauth_signature=\"%26$TS\", oauth_nonce=\"$nonce\", oauth_timestamp=\"$(date +%s)\""
}

# http_get URL OUT: authenticated when the node has a token. Retries a few
# times: the region may be busy.
http_get() {
  i=0
  while [ $i -lt 5 ]; do
    if [ -n "$TK" ]; then
      wget -q -O "$2" --header "$(oauth_header)" "$1" && return 0
    else
      wget -q -O "$2" "$1" && return 0
    fi
    i=$((i + 1)); sleep 2
  done
  say "GET $1 failed"
  return 1
}

# http_post URL BODYFILE CONTENT-TYPE [OUT]
http_post() {
  out=${4:-/dev/null}
  i=0
  while [ $i -lt 5 ]; do
    if [ -n "$TK" ]; then
      wget -q -O "$out" --header "$(oauth_header)" --header "Content-Type: $3" --post-file "$2" "$1" && return 0
    else
      wget -q -O "$out" --header "Content-Type: $3" --post-file "$2" "$1" && return 0
    fi
    i=$((i + 1)); sleep 2
  done
  say "POST $1 failed"
  return 1
}

# multipart BODY FIELD=VALUE... @NAME=FILE...: a multipart/form-data body
# with boundary $BOUNDARY (values and files as MAAS's signal expects).
BOUNDARY=maas-rs-lab-8f14e45fceea167a5a36dedd4bea2543
multipart() {
  body=$1; shift
  : > "$body"
  for a in "$@"; do
    case "$a" in
      @*=*)
        n=${a%%=*}; n=${n#@}; f=${a#*=}
        printf -- '--%s\r\nContent-Disposition: form-data; name="%s"; filename="%s"\r\nContent-Type: application/octet-stream\r\n\r\n' \
          "$BOUNDARY" "$n" "$n" >> "$body"
        cat "$f" >> "$body"; printf '\r\n' >> "$body" ;;
      *=*)
        printf -- '--%s\r\nContent-Disposition: form-data; name="%s"\r\n\r\n%s\r\n' "$BOUNDARY" "${a%%=*}" "${a#*=}" >> "$body" ;;
    esac
  done
  printf -- '--%s--\r\n' "$BOUNDARY" >> "$body"
}

# signal STATUS [FIELD=VALUE | @NAME=FILE]...: POST <metadata>/latest/?op=signal
signal() {
  st=$1; shift
  multipart /tmp/signal.body "op=signal" "status=$st" "$@"
  say "signal $st $*"
  http_post "$METADATA_URL/latest/?op=signal" /tmp/signal.body "multipart/form-data; boundary=$BOUNDARY"
}

json_str() { # a JSON string literal
  printf '"%s"' "$(printf '%s' "$1" | sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' | tr '\n\t' '  ')"
}

# event ORIGIN NAME start|finish DESCRIPTION [SUCCESS|FAIL [FILE]]: a
# cloud-init/curtin reporting event to the status webhook.
event() {
  [ -n "$REPORT_URL" ] || return 0
  {
    printf '{"origin": %s, "name": %s, "event_type": %s, "description": %s, "timestamp": %s' \
      "$(json_str "$1")" "$(json_str "$2")" "$(json_str "$3")" "$(json_str "$4")" "$(date +%s).0"
    [ -n "$5" ] && printf ', "result": %s' "$(json_str "$5")"
    if [ -n "$6" ] && [ -f "$6" ]; then
      printf ', "files": [{"path": %s, "encoding": "base64", "content": "%s"}]' \
        "$(json_str "$6")" "$(base64 "$6" | tr -d '\n')"
    fi
    printf '}'
  } > /tmp/event.json
  say "event $1 $2 $3 ${5:-}"
  http_post "$REPORT_URL" /tmp/event.json application/json
}
