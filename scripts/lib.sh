# Shared by scripts/dev and scripts/test: install Debian packages only when missing.

# ensure_packages PKG... : apt-get installs the ones dpkg does not know yet.
ensure_packages() {
  local missing=() p
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  if [ ${#missing[@]} -eq 0 ]; then
    echo "all present: $*"
    return
  fi
  echo "installing: ${missing[*]}"
  local sudo_cmd=""
  [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${missing[@]}"
}

# C libraries librdkafka builds against (ssl, sasl, zlib, and curl for OAUTHBEARER/OIDC token
# fetches), plus a compiler.
BUILD_PACKAGES=(build-essential pkg-config libssl-dev libsasl2-dev zlib1g-dev libcurl4-openssl-dev)
