#!/usr/bin/env bash
# Installs what the project needs on Debian, as root, when it is missing: R (r-base-dev) and the R
# packages the tests use, NNG for the transport's NNG backend, and the Rust toolchain's helpers.
set -euo pipefail
need=()
command -v Rscript >/dev/null 2>&1 || need+=(r-base-dev)
command -v pkg-config >/dev/null 2>&1 || need+=(pkg-config)
dpkg -s libnng-dev >/dev/null 2>&1 || need+=(libnng-dev)
# shiny, jsonlite, foreach and doParallel: the ecosystem tests (Shiny app, parallel backend);
# future: a peer measured side by side by `cargo xtask bench`; knitr, rmarkdown (with pandoc):
# the vignettes, built by `cargo xtask build-r`; roxygen2: help pages (man/ is committed);
# pkgdown: the documentation site (scripts/test-site.sh); rlang, withr, httpuv: used by tests.
for p in testthat cli later promises shiny jsonlite foreach doParallel future knitr rmarkdown roxygen2 pkgdown rlang withr httpuv; do
  if ! command -v Rscript >/dev/null 2>&1 || ! Rscript -e "quit(status = !requireNamespace('$p', quietly = TRUE))" >/dev/null 2>&1; then
    need+=("r-cran-${p,,}")
  fi
done
# Headless Chromium drives the Shiny test app.
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v pandoc >/dev/null 2>&1 || need+=(pandoc)
# R CMD check --as-cran (scripts/test-check.sh): checkbashisms (Debian's devscripts) for the
# configure and cleanup scripts, tidy for the HTML validation of the help pages, qpdf for the
# size check of PDFs.
command -v checkbashisms >/dev/null 2>&1 || need+=(devscripts)
command -v tidy >/dev/null 2>&1 || need+=(tidy)
command -v qpdf >/dev/null 2>&1 || need+=(qpdf)
# The remote-launch tests start real services on 127.0.0.1 (scripts/services): an OpenSSH server,
# a single-node Slurm with munge; they also use openssl (test PKI), curl (http_config), python3
# (the test's HTTP server), unshare and ip (an isolated network namespace for SSH tunnels), ps.
[[ -x /usr/sbin/sshd ]] || need+=(openssh-server)
command -v ssh >/dev/null 2>&1 || need+=(openssh-client)
[[ -x /usr/sbin/slurmctld ]] || need+=(slurmctld)
[[ -x /usr/sbin/slurmd ]] || need+=(slurmd)
command -v sbatch >/dev/null 2>&1 || need+=(slurm-client)
[[ -x /usr/sbin/munged ]] || need+=(munge)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
command -v curl >/dev/null 2>&1 || need+=(curl)
command -v python3 >/dev/null 2>&1 || need+=(python3)
command -v ip >/dev/null 2>&1 || need+=(iproute2)
command -v unshare >/dev/null 2>&1 || need+=(util-linux)
command -v ps >/dev/null 2>&1 || need+=(procps)
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
# rotel, a Rust OpenTelemetry collector shipped on PyPI: the tracing test
# tests/tests/tracing_rotel.rs sends spans through it (rotel-agent on the PATH). In a venv so
# that no system Python is touched; pinned, as it is an alpha.
if ! command -v rotel-agent >/dev/null 2>&1; then
  echo "deps: installing rotel (pip) into /opt/mirai-rotel"
  if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends python3-venv >/dev/null
  fi
  python3 -m venv /opt/mirai-rotel
  /opt/mirai-rotel/bin/pip install -q rotel==0.0.1a15
  ln -sf "$(/opt/mirai-rotel/bin/python3 -c 'import os, rotel; print(os.path.join(os.path.dirname(rotel.__file__), "rotel-agent"))')" /usr/local/bin/rotel-agent
fi
