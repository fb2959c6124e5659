#!/usr/bin/env bash
# Installs the Debian 12 packages skillcard builds and tests with. Idempotent: packages
# already present are left alone, and apt-get runs only when something is missing.
set -euo pipefail

PACKAGES=(
  # toolchain
  build-essential cmake ninja-build pkg-config clang clang-format libclang-rt-14-dev lld
  # crypto and formats
  libssl-dev libmbedtls-dev libcbor-dev zlib1g-dev libcsv-dev
  # helpers
  libcli11-dev nlohmann-json3-dev libspdlog-dev libfmt-dev libtomlplusplus-dev
  # tests and benchmarks
  libgtest-dev libgmock-dev libbenchmark-dev librapidcheck-dev curl
  # service and storage (later issues build on these)
  libboost1.74-dev libboost-system1.74-dev libsqlite3-dev libpq-dev
  # the PostgreSQL ledger's tests start a throwaway PostgreSQL 15 (tests/ledger/pg_fixture.sh);
  # pg_dump / pg_restore for its backups
  postgresql-15 postgresql-client-15
  # readers (later issues build on these)
  libpcsclite-dev pcscd vsmartcard-vpcd pcsc-tools opensc
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

echo "install-deps: installing ${#missing[@]} missing packages: ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: not root; run as root or install these packages yourself" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-deps: done"
