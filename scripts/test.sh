#!/usr/bin/env bash
# Runs every test: formatting and lints, the Rust workspace (each crate and the cross-layer tests), then the R
# package's testthat suite against the installed package, its pkgdown site opened in headless
# Chromium (scripts/test-site.sh), then the R source tarballs (nanonext, mirai): built,
# installed alone with no network, and the quick start run (scripts/test-tarball.sh), and
# R CMD check --as-cran on both of them (scripts/test-check.sh: no error, no warning).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
cargo fmt --all --check
cargo clippy --workspace --all-targets -- -D warnings
cargo test --workspace --all-targets
cargo test --workspace --doc
cargo xtask test-r
# The documentation site, from the package test-r just installed into target/R.
SKIP_INSTALL=1 bash scripts/test-site.sh
bash scripts/test-tarball.sh
# The tarballs test-tarball just built, in target/pkg.
SKIP_BUILD=1 bash scripts/test-check.sh
