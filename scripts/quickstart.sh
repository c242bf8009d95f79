#!/usr/bin/env bash
# Sets everything up on a fresh Debian machine (as root) and runs the quick-start example with
# local daemons against the freshly built and installed package.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
cargo xtask install-r
R_LIBS="$PWD/target/R" Rscript -e '
library(mirai)
t0 <- Sys.time()
daemons(5)
m <- mirai({ Sys.sleep(1); 100 + 42 })
mp <- mirai_map(1:9, \(x) { Sys.sleep(1); x^2 })
m; mp
m[]
mp[.flat]
daemons(0)
cat(sprintf("elapsed: %.1f s\n", as.numeric(difftime(Sys.time(), t0, units = "secs"))))
'
