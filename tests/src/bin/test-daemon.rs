//! `mirai-daemon` with its built-in evaluator, built as part of this package so that the
//! cross-layer tests can start real daemon processes.

fn main() {
    std::process::exit(mirai::daemon::cli::cli_main());
}
