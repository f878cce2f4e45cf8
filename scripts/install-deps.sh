#!/usr/bin/env bash
# Installs every Debian package Skiff needs to build, test and run. Idempotent: packages that are
# already present are skipped, and apt is only asked when something is missing.
set -euo pipefail

packages=(
  # toolchain and build
  build-essential cmake ninja-build pkg-config git clang llvm lld libclang-rt-14-dev
  clang-format clang-tidy
  # libraries
  libboost-all-dev libprotobuf-dev protobuf-compiler libgrpc++-dev protobuf-compiler-grpc
  libyaml-cpp-dev nlohmann-json3-dev
  libsqlite3-dev libssl-dev libcli11-dev libspdlog-dev libfmt-dev
  libgtest-dev libgmock-dev libbenchmark-dev libjemalloc-dev
  # eBPF data path
  libbpf-dev bpftool libxdp-dev xdp-tools libelf-dev zlib1g-dev
  # DPDK data path
  dpdk dpdk-dev libdpdk-dev
  # containers, images, registry
  runc busybox-static umoci skopeo docker-registry libarchive-dev
  # cluster store and real clients
  etcd-server etcd-client kubectl python3-kubernetes
  # networking and traffic tools
  iproute2 iptables nftables wrk iperf3 curl ca-certificates openssl
  # plots
  gnuplot-nox
  # graceful node shutdown (systemd-logind over D-Bus) and its tests' private bus and fake logind
  libdbus-1-dev dbus-daemon python3-dbus python3-gi
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed'; then
    missing+=("$p")
  fi
done

if ((${#missing[@]} == 0)); then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

if [[ $(id -u) -ne 0 ]]; then
  echo "install-deps: missing packages (run as root to install): ${missing[*]}" >&2
  exit 1
fi

echo "install-deps: installing ${#missing[@]} packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
