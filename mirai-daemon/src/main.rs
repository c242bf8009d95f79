//! `mirai-daemon URL [options]`: see [`mirai_daemon::cli`].

fn main() {
    std::process::exit(mirai_daemon::cli_main());
}
