#!/usr/bin/env bash
# Installs the Debian 12 packages preforkctl builds and tests with, if any is missing.
set -euo pipefail

packages=(g++ cmake ninja-build pkg-config libboost-dev libcli11-dev libspdlog-dev libfmt-dev
          libtomlplusplus-dev nlohmann-json3-dev libgtest-dev libgmock-dev asciidoctor util-linux curl)
# For the end-to-end tests: faketime moves the wall clock under preforkctl, systemd ships
# systemd-socket-activate (sockets handed over as systemd does), python3 runs a script worker and, with
# python3-yaml, checks the container kits of contrib/; zsh and fish load the completion scripts.
packages+=(faketime systemd python3 python3-yaml zsh fish)
# More on request (tests/run.sh: the real servers; CI: clang).
packages+=("$@")

missing=()
for package in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "installing: ${missing[*]}" >&2
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
