#!/usr/bin/env bash
# Installs every build and test dependency of Hearth from Debian 12's own packages.
# Safe to run twice: apt-get install is idempotent, and the package list is refreshed only when stale.
# Non-obvious choice: nothing here downloads anything but Debian packages; CUDA is optional and is
# detected at configure time from /usr/local/cuda, never installed by this script.
set -euo pipefail

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

PACKAGES=(
  # toolchain
  build-essential cmake ninja-build pkg-config git clang libclang-rt-14-dev
  ccache  # used automatically when present: rebuilds in fresh build folders reuse objects
  libgtest-dev libgmock-dev
  # Qt 6 (Widgets, Sql, Test, Concurrent, PrintSupport come with qtbase; Svg separately)
  qt6-base-dev qt6-base-dev-tools qt6-svg-dev libqt6sql6-sqlite qt6-qpa-plugins
  libgl-dev
  # charts
  libqcustomplot-dev libqcustomplot2.1-qt6
  # engine / store libraries
  libsentencepiece-dev libsqlite3-dev libopenblas-dev libpcre2-dev
  nlohmann-json3-dev libyaml-cpp-dev libcli11-dev
  # reference tests (run with /usr/bin/python3)
  python3 python3-torch python3-numpy python3-jinja2
  # GUI tests
  xvfb xauth
  # text corpora for training tests
  fortunes bible-kjv-text wamerican dict-devil
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PACKAGES[@]} packages already installed"
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# Refresh the lists if they are missing or older than a day.
if [ -z "$(find /var/lib/apt/lists -maxdepth 1 -name '*Packages*' -mtime -1 2>/dev/null | head -1)" ]; then
  $SUDO apt-get update -q
fi
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
echo "install-deps: done"
