#!/usr/bin/env bash
# Proof that the R source tarball installs anywhere with R, a C compiler, cargo and rustc:
# builds it (`cargo xtask build-r`), copies it alone into an empty directory, and there, in a
# network namespace with no network (`unshare -n`), with an empty HOME (no ~/.cargo registry, no
# checkout, no MIRAI_WORKSPACE), installs it into a fresh library and runs the README's quick
# start, which must print 142 and the squares. Fails at the first step that fails; prints the
# time of the build and of the install. Needs root (for unshare) on Linux.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
version=$(sed -n 's/^Version: *//p' mirai-r/rpkg/DESCRIPTION)
tarball="target/pkg/mirai_${version}.tar.gz"

t0=$(date +%s)
rm -f "$tarball"
cargo xtask build-r
test -f "$tarball" || { echo "test-tarball: $tarball was not built" >&2; exit 1; }
t1=$(date +%s)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp "$tarball" "$work/"
mkdir "$work/lib" "$work/home"
cargo_bin=$(dirname "$(command -v cargo)")
# rustup's proxies find their toolchains through RUSTUP_HOME, which an empty HOME would hide.
rustup_home=${RUSTUP_HOME:-$HOME/.rustup}
offline() {
  (cd "$work" && unshare -n -- env -u MIRAI_WORKSPACE -u CARGO_TARGET_DIR -u CARGO_HOME -u CARGO \
    -u R_LIBS -u R_LIBS_USER HOME="$work/home" RUSTUP_HOME="$rustup_home" \
    PATH="$cargo_bin:$PATH" "$@")
}
echo "== R CMD INSTALL $(basename "$tarball"), offline, in $work"
if ! offline R CMD INSTALL --library="$work/lib" "$(basename "$tarball")" 2>&1 | tee "$work/install.log"; then
  echo "test-tarball: R CMD INSTALL of the tarball failed (offline)" >&2; exit 1
fi
t2=$(date +%s)
grep -q '^mirai: using rustc ' "$work/install.log" ||
  { echo "test-tarball: the install log does not name rustc's version" >&2; exit 1; }
if [ -n "$(ls -A "$work/home")" ]; then
  echo "test-tarball: the install wrote into HOME:" >&2; ls -A "$work/home" >&2; exit 1
fi

echo "== quick start, offline"
if ! offline env R_LIBS="$work/lib" Rscript -e '
library(mirai)
daemons(5)
m <- mirai({ Sys.sleep(1); 100 + 42 })
mp <- mirai_map(1:9, \(x) { Sys.sleep(1); x^2 })
m; mp
m[]
mp[.flat]
daemons(0)
' 2>&1 | tee "$work/quickstart.log"; then
  echo "test-tarball: the quick start failed" >&2; exit 1
fi
grep -q '^\[1\] 142$' "$work/quickstart.log" ||
  { echo "test-tarball: the quick start did not print 142" >&2; exit 1; }
grep -Eq '^\[1\] +1 +4 +9 +16 +25 +36 +49 +64 +81$' "$work/quickstart.log" ||
  { echo "test-tarball: the quick start did not print the squares" >&2; exit 1; }
echo "test-tarball: ok ($(du -h "$root/$tarball" | cut -f1) tarball; build $((t1 - t0)) s, offline install $((t2 - t1)) s)"
