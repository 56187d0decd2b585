#!/usr/bin/env bash
# Installs everything the test suite needs, idempotently:
#   - Debian packages listed in scripts/deps/*.apt (one per line, # comments)
#   - PyPI packages listed in scripts/deps/*.pip into one virtualenv, whose
#     path this script prints on its last line (also: scripts/venv-path.sh).
# Each area of the project keeps its own list file, so lists never conflict.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { echo "install-deps: $*" >&2; }

read_list() { # files... -> unique package names
  cat "$@" 2>/dev/null | sed -e 's/#.*//' -e 's/[[:space:]]\+$//' -e '/^[[:space:]]*$/d' | sort -u
}

# --- Debian packages -------------------------------------------------------
shopt -s nullglob
apt_lists=(scripts/deps/*.apt)
if ((${#apt_lists[@]})); then
  missing=()
  while read -r pkg; do
    # `name/suite` asks apt for a package from that suite (e.g. bookworm-backports).
    st=$(dpkg-query -W -f='${Status}' "${pkg%%/*}" 2>/dev/null || true)
    [[ "$st" == "install ok installed" ]] || missing+=("$pkg")
  done < <(read_list "${apt_lists[@]}")
  if ((${#missing[@]})); then
    log "apt-get install ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    if printf '%s\n' "${missing[@]}" | grep -q '/bookworm-backports$' &&
       ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
      # Backports from the same Debian mirror the machine already uses.
      mirror=$(grep -rhs '^URIs:.*debian$' /etc/apt/sources.list.d/ | awk '{print $2; exit}')
      [[ -n "$mirror" ]] || mirror=$(grep -hs '^deb .*debian' /etc/apt/sources.list | awk '{print $2; exit}')
      [[ -n "$mirror" ]] || { log "no Debian mirror configured in /etc/apt; cannot add backports"; exit 1; }
      log "adding bookworm-backports from $mirror"
      printf 'Types: deb\nURIs: %s\nSuites: bookworm-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
        "$mirror" > /etc/apt/sources.list.d/maas-rs-backports.sources
    fi
    apt-get update -qq >&2
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
  fi
fi

# --- Python virtualenv -----------------------------------------------------
venv=$(scripts/venv-path.sh)
pip_lists=(scripts/deps/*.pip)
want=$(read_list "${pip_lists[@]}")
stamp="$venv/.maas-rs-requirements"
if [[ ! -x "$venv/bin/python" ]]; then
  log "creating virtualenv $venv"
  mkdir -p "$(dirname "$venv")"
  python3 -m venv "$venv" >&2
fi
if [[ -n "$want" ]] && [[ "$(cat "$stamp" 2>/dev/null)" != "$want" ]]; then
  log "pip install into $venv: $(echo $want)"
  # shellcheck disable=SC2086
  "$venv/bin/pip" install -q --disable-pip-version-check $want >&2
  echo "$want" > "$stamp"
fi
echo "$venv"
