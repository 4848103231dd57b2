#!/usr/bin/env bash
# install-deps.sh [build|test|bench|run]: installs the Debian packages Stratus needs for
# that purpose, and only those that are missing. Idempotent; quick when nothing is missing.
set -euo pipefail
what=${1:-build}

build_pkgs=(build-essential cmake ninja-build ccache pkg-config clang-format
  libboost-dev nlohmann-json3-dev libsqlite3-dev libssl-dev libarchive-dev libzstd-dev
  libseccomp-dev libyaml-cpp-dev libcli11-dev libspdlog-dev
  libgtest-dev libgmock-dev libbenchmark-dev)
# End-to-end tests drive the server with Debian's boto3 and aws CLI; sandbox tests need
# busybox-static roots and iproute2; registry tests push and pull with skopeo and build
# OCI layouts with umoci.
test_pkgs=(python3 python3-boto3 python3-pil awscli curl busybox-static iproute2 util-linux skopeo umoci)
bench_pkgs=(wrk nginx-light runc python3 python3-botocore curl busybox-static docker-registry)

pkgs=("${build_pkgs[@]}")
case $what in
  build|run) ;;
  test) pkgs+=("${test_pkgs[@]}") ;;
  bench) pkgs+=("${test_pkgs[@]}" "${bench_pkgs[@]}") ;;
  *) echo "usage: install-deps.sh [build|test|bench|run]" >&2; exit 2 ;;
esac

missing=()
for p in "${pkgs[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [[ $status == "install ok installed" ]] || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "install-deps: installing ${missing[*]}"
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "install-deps: need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
  sudo=sudo
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -q
$sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
