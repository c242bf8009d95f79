#!/usr/bin/env bash
# Builds the pkgdown site of the R package (reference with its examples run, and the vignettes
# as articles) into target/site, offline, then opens its front page and the mirai() reference
# page in headless Chromium: screenshots in target/site-shots, and checks on the rendered DOM
# (page titles, an example's output on the reference page). Exits non-zero on any failure.
#   SKIP_INSTALL=1  use the package already in target/R (else `cargo xtask install-r` first)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
t0=$(date +%s)
site="$root/target/site"
shots="$root/target/site-shots"

[ "${SKIP_INSTALL:-0}" = 1 ] || cargo xtask install-r
[ -d target/R/mirai ] || { echo "test-site: mirai is not installed in target/R" >&2; exit 1; }
command -v chromium >/dev/null || { echo "test-site: chromium not found" >&2; exit 1; }

# pkgdown reads DESCRIPTION's authors for every page footer; until DESCRIPTION names them,
# the staging copy gets a neutral entry (the real one wins as soon as it exists).
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
cp -r mirai-r/rpkg "$stage/mirai"
rm -rf "$stage/mirai/src" "$stage/mirai/tests"
if ! grep -q '^Authors@R:\|^Maintainer:' "$stage/mirai/DESCRIPTION"; then
  echo 'Authors@R: person("mirai-on-Rust contributors", role = c("aut", "cre"))' >> "$stage/mirai/DESCRIPTION"
fi

rm -rf "$site" "$shots"
mkdir -p "$shots"
# No network: no CRAN look-ups (pkgdown.internet), no repository; the installed package is used
# (devel = FALSE), never a build from the sources.
R_LIBS="$root/target/R" Rscript - "$stage/mirai" "$site" <<'RS'
a <- commandArgs(TRUE)
options(repos = c(CRAN = "file:///nonexistent"), pkgdown.internet = FALSE)
# downlit links `pkg::fun` of packages that are not installed (torch, arrow) through CRAN's
# package list, which it downloads: offline, those stay unlinked.
utils::assignInNamespace("CRAN_urls", function() data.frame(Package = character(), URL = character()), "downlit")
pkg <- pkgdown::as_pkgdown(a[1], override = list(destination = a[2]))
pkgdown::init_site(pkg)
pkgdown::build_home_index(pkg, quiet = TRUE)
pkgdown::build_reference(pkg, devel = FALSE, examples = TRUE, run_dont_run = FALSE, preview = FALSE)
pkgdown::build_articles(pkg, preview = FALSE)
pkgdown::build_search(pkg)
RS

fail=0
check() { # check <what> <command...>
  local what=$1; shift
  if "$@"; then echo "ok   $what"; else echo "FAIL $what" >&2; fail=1; fi
}

for f in index.html reference/index.html reference/mirai.html reference/daemons.html \
         reference/mirai_map.html articles/index.html; do
  check "$f exists" test -s "$site/$f"
done
for a in mirai promises parallel remote serialization tracing reliability; do
  check "article $a" test -s "$site/articles/$a.html"
done
# Every export has a reference page that an index entry links to.
exports=$(R_LIBS="$root/target/R" Rscript -e 'cat(getNamespaceExports(asNamespace("mirai")), sep = "\n")')
n=0
for e in $exports; do
  n=$((n + 1))
  grep -qF -e ">$e()</a></code>" -e ">$e</a></code>" "$site/reference/index.html" ||
    { echo "FAIL no index entry for $e" >&2; fail=1; }
done
echo "done index entries looked up for $n exports"
check "no uncaught example errors on the reference pages" bash -c "! grep -l 'class=\"error\"' '$site'/reference/*.html"

browse() { # browse <page> <name>: screenshot and DOM of file://<page>
  chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=1280,2000 \
    --screenshot="$shots/$2.png" "file://$1" >/dev/null 2>&1
  chromium --headless --no-sandbox --disable-gpu --dump-dom "file://$1" 2>/dev/null > "$shots/$2.dom.html"
}
browse "$site/index.html" home
browse "$site/reference/mirai.html" reference-mirai
check "home screenshot" test -s "$shots/home.png"
check "reference screenshot" test -s "$shots/reference-mirai.png"
check "home title" grep -q '<title>.*mirai.*</title>' "$shots/home.dom.html"
check "home describes the package" grep -q 'asynchronously' "$shots/home.dom.html"
check "mirai() page title" grep -q '<title>Evaluate an expression asynchronously' "$shots/reference-mirai.dom.html"
check "mirai() page shows its usage" grep -q 'mirai</span><span class="op">(</span><span class="va">.expr</span>' "$shots/reference-mirai.dom.html"
# The examples ran: values the examples print ('errorValue' for the timed-out task, the
# resolved mirai's print form).
check "mirai() example output: timed out" grep -q "int 5 | Timed out" "$shots/reference-mirai.dom.html"
check "mirai() example output: resolved mirai" grep -q '&lt; mirai \[\$data\] &gt;' "$shots/reference-mirai.dom.html"

echo "test-site: $(( $(date +%s) - t0 )) s; site in $site, screenshots in $shots"
exit $fail
