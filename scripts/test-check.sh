#!/usr/bin/env bash
# R CMD check --as-cran on both source tarballs, nanonext then mirai, into target/check/:
# fails on any ERROR or WARNING and prints every NOTE (the README's "R CMD check" section says
# why each remaining one is there). Builds the tarballs with `cargo xtask build-r` unless
# SKIP_BUILD=1, which reuses target/pkg (scripts/test.sh runs it after test-tarball.sh built them).
#
# No network: the check runs in a network namespace of its own (`unshare -n`, loopback up for the
# tests' 127.0.0.1 listeners) with the incoming checks that need CRAN off
# (_R_CHECK_CRAN_INCOMING_REMOTE_=false); --no-manual when there is no pdflatex. Suggested
# packages that Debian does not ship (secretbase) are not forced (_R_CHECK_FORCE_SUGGESTS_=false).
# R's repositories point at an empty local one (target/check/cran): --as-cran looks a suggested
# package that is not installed up in CRAN's package database (is it orphaned?), which an empty
# database answers "no" offline instead of failing on the network.
#
# Tests: nanonext's suite runs in full under check. mirai's does too, except the tests that need the
# checkout's scripts/services (sshd, Slurm), which skip when run from the installed tarball;
# `cargo xtask test-r` runs those from the checkout. MIRAI_CHECK_ARGS adds arguments to each
# check (e.g. --no-tests). mirai's check finds nanonext where nanonext's check installed it
# (target/check/nanonext.Rcheck), so nanonext compiles once. Needs root (for unshare) on Linux.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
out="$root/target/check"
pkgs=(nanonext mirai)
declare -A dirs=([nanonext]=nanonext-r/rpkg [mirai]=mirai-r/rpkg)

t0=$(date +%s)
if [ "${SKIP_BUILD:-0}" != 1 ]; then cargo xtask build-r; fi
t1=$(date +%s)

args=(--as-cran)
command -v pdflatex >/dev/null 2>&1 || args+=(--no-manual)
# shellcheck disable=SC2206 # word splitting wanted
args+=(${MIRAI_CHECK_ARGS:-})
rm -rf "$out"
mkdir -p "$out"
cran="$out/cran"
mkdir -p "$cran/src/contrib" "$cran/web/packages"
: > "$cran/src/contrib/PACKAGES"
Rscript -e 'saveRDS(data.frame(Package = character(), Maintainer = character()), commandArgs(TRUE)[1L])' \
  "$cran/web/packages/packages.rds"
printf 'options(repos = c(CRAN = "file://%s"))\n' "$cran" > "$out/Rprofile"

# In a network namespace with only loopback (the tests listen on 127.0.0.1).
offline() {
  unshare -n -- sh -c 'ip link set lo up && exec "$@"' sh "$@"
}

status=0
summary=()
for p in "${pkgs[@]}"; do
  version=$(sed -n 's/^Version: *//p' "${dirs[$p]}/DESCRIPTION")
  tarball="$root/target/pkg/${p}_${version}.tar.gz"
  test -f "$tarball" || { echo "test-check: $tarball is missing (build it with cargo xtask build-r)" >&2; exit 1; }
  echo "== R CMD check ${args[*]} $(basename "$tarball")"
  ts=$(date +%s)
  # R CMD check's exit status says only whether it errored; 00check.log says the rest.
  (cd "$out" && offline env _R_CHECK_CRAN_INCOMING_REMOTE_=false _R_CHECK_FORCE_SUGGESTS_=false \
    R_PROFILE="$out/Rprofile" R_CRAN_WEB="file://$cran" \
    R_LIBS="$out/nanonext.Rcheck${R_LIBS:+:$R_LIBS}" \
    R CMD check "${args[@]}" "$tarball") > "$out/$p.log" 2>&1 || true
  te=$(date +%s)
  log="$out/$p.Rcheck/00check.log"
  if [ ! -f "$log" ]; then
    cat "$out/$p.log" >&2
    echo "test-check: R CMD check of $p wrote no 00check.log" >&2; exit 1
  fi
  st=$(sed -n 's/^Status: //p' "$log" | tail -n 1)
  summary+=("$p: ${st:-no status} ($((te - ts)) s)")
  # Each NOTE, WARNING and ERROR with its explanation (the lines up to the next check).
  awk '/^\* / { show = ($0 ~ / (NOTE|WARNING|ERROR)$/) } show' "$log"
  if [ -z "$st" ] || grep -Eq '(ERROR|WARNING)' <<<"$st"; then
    status=1
    echo "test-check: $p: ${st:-the check did not finish}; the end of the log ($log):" >&2
    tail -n 40 "$log" >&2
    fail_out=$(ls "$out/$p.Rcheck/tests/"*.Rout.fail 2>/dev/null || true)
    for f in $fail_out; do echo "--- $f (end)" >&2; tail -n 60 "$f" >&2; done
  fi
done
t2=$(date +%s)
printf '%s\n' "${summary[@]}"
if [ "$status" != 0 ]; then
  echo "test-check: failed (errors or warnings above)" >&2; exit 1
fi
echo "test-check: ok (build $((t1 - t0)) s, checks $((t2 - t1)) s)"
