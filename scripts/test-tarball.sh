#!/usr/bin/env bash
# Proof that the R source tarballs install anywhere with R, a C compiler, cargo and rustc: builds
# both (`cargo xtask build-r`: nanonext and mirai), copies them alone into an empty directory,
# and there, in a network namespace with no network (`unshare -n`), with an empty HOME (no
# ~/.cargo registry, no checkout, no MIRAI_WORKSPACE), installs them into a fresh library,
# nanonext first (mirai imports it), and runs the README's quick start, which must print 142 and
# the squares. Fails at the first step that fails; prints the time of the build and of the
# installs. Needs root (for unshare) on Linux. The tarballs stay in target/pkg for
# scripts/test-check.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
tarballs=()
for dir in nanonext-r/rpkg mirai-r/rpkg; do
  name=$(sed -n 's/^Package: *//p' "$dir/DESCRIPTION")
  version=$(sed -n 's/^Version: *//p' "$dir/DESCRIPTION")
  tarballs+=("target/pkg/${name}_${version}.tar.gz")
done

t0=$(date +%s)
rm -f "${tarballs[@]}"
cargo xtask build-r
for tarball in "${tarballs[@]}"; do
  test -f "$tarball" || { echo "test-tarball: $tarball was not built" >&2; exit 1; }
done
t1=$(date +%s)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp "${tarballs[@]}" "$work/"
mkdir "$work/lib" "$work/home"
cargo_bin=$(dirname "$(command -v cargo)")
# rustup's proxies find their toolchains through RUSTUP_HOME, which an empty HOME would hide.
rustup_home=${RUSTUP_HOME:-$HOME/.rustup}
offline() {
  (cd "$work" && unshare -n -- env -u MIRAI_WORKSPACE -u CARGO_TARGET_DIR -u CARGO_HOME -u CARGO \
    -u R_LIBS -u R_LIBS_USER HOME="$work/home" RUSTUP_HOME="$rustup_home" \
    PATH="$cargo_bin:$PATH" "$@")
}
for tarball in "${tarballs[@]}"; do
  file=$(basename "$tarball")
  name=${file%%_*}
  echo "== R CMD INSTALL $file, offline, in $work"
  if ! offline env R_LIBS="$work/lib" R CMD INSTALL --library="$work/lib" "$file" 2>&1 | tee "$work/install-$name.log"; then
    echo "test-tarball: R CMD INSTALL of $file failed (offline)" >&2; exit 1
  fi
  grep -q "^$name: using rustc " "$work/install-$name.log" ||
    { echo "test-tarball: the install log of $file does not name rustc's version" >&2; exit 1; }
done
t2=$(date +%s)
if [ -n "$(ls -A "$work/home")" ]; then
  echo "test-tarball: the installs wrote into HOME:" >&2; ls -A "$work/home" >&2; exit 1
fi

echo "== nanonext alone, offline: a condition variable signalled and taken"
offline env R_LIBS="$work/lib" Rscript -e '
library(nanonext)
x <- cv()
cv_signal(x)
stopifnot(until(x, 100), !until(x, 10), cv_value(x) == 0L)
cat("nanonext", format(packageVersion("nanonext")), "ok\n")
' || { echo "test-tarball: nanonext from the tarball does not work" >&2; exit 1; }

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
sizes=$(cd "$root" && du -h "${tarballs[@]}" | awk '{ sub(".*/", "", $2); printf "%s%s %s", sep, $2, $1; sep = ", " }')
echo "test-tarball: ok ($sizes; build $((t1 - t0)) s, offline installs $((t2 - t1)) s)"
