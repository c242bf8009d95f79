#!/usr/bin/env bash
# Installs what the project needs on Debian, as root, when it is missing: R (r-base-dev) and the R
# packages the tests use, NNG for the transport's NNG backend, and the Rust toolchain's helpers.
set -euo pipefail
need=()
command -v Rscript >/dev/null 2>&1 || need+=(r-base-dev)
command -v pkg-config >/dev/null 2>&1 || need+=(pkg-config)
dpkg -s libnng-dev >/dev/null 2>&1 || need+=(libnng-dev)
for p in testthat cli later promises; do
  if ! command -v Rscript >/dev/null 2>&1 || ! Rscript -e "quit(status = !requireNamespace('$p', quietly = TRUE))" >/dev/null 2>&1; then
    need+=("r-cran-$p")
  fi
done
if ! command -v cargo >/dev/null 2>&1; then
  echo "deps: cargo not found; installing Debian's cargo (a rustup toolchain is preferred)" >&2
  need+=(cargo)
fi
if ((${#need[@]})); then
  echo "deps: installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
