//! The R bridge of mirai: the `.Call` routines of the R package `mirai`, over the Rust engine.
//!
//! This crate is built as a static library and linked into the package's `mirai.so` (see
//! `rpkg/src/Makevars`); `R_init_mirai` (in `rpkg/src/init.c`) calls [`mirai_rust_init`],
//! which registers every routine. The contract between the R code and these routines is
//! `docs/r-bridge.md`.
//!
//! What it is for: turning R objects into payload bytes and back (R's own serialization, with
//! `serial_config()` hooks), holding engine objects in external pointers, waiting
//! interruptibly, and running the daemon loop with R as its evaluator. What it is not: the
//! scheduler, the transport or the protocol (the engine crates), nor the R-level API (the R
//! code in `rpkg/R`).
//!
//! Every routine runs on R's main thread; engine threads never call R. R errors are raised only
//! at the outermost level of a routine, after its Rust values are dropped (`mirai_rapi::guard`).

#![forbid(unsafe_code)]

mod aio;
mod aiokind;
mod cancel;
mod chunk;
mod codes;
mod daemon;
mod evaluate;
mod fastser;
mod go;
mod handles;
mod host;
mod keyed;
mod later;
mod payload;
mod rcall;
mod remote;
mod serial;
mod sexp;
mod task;
mod tls;
mod values;
mod wait;

use mirai_rapi::CallMethod;

/// The routines (docs/r-bridge.md): each registered under its function's name, with the arity
/// of its signature.
fn routines() -> Vec<CallMethod> {
    mirai_rapi::routines![
        host::mirai_host_start,
        host::mirai_host_map_span,
        aiokind::mirai_aio,
        aio::mirai_attempts_of,
        host::mirai_host_url,
        host::mirai_host_reset,
        host::mirai_host_status,
        host::mirai_host_wait_connections,
        host::mirai_host_launch,
        host::mirai_host_admit,
        host::mirai_host_wait_admit,
        host::mirai_host_exit_daemons,
        task::mirai_submit,
        task::mirai_everywhere,
        aiokind::mirai_pending,
        keyed::mirai_keyed_tasks,
        task::mirai_resolved,
        task::mirai_take,
        task::mirai_wait,
        task::mirai_race,
        task::mirai_cancel,
        task::mirai_serialize,
        task::mirai_unserialize,
        daemon::mirai_daemon_run,
        later::mirai_later,
        tls::mirai_tls_generate,
        remote::mirai_daemon_args,
        remote::mirai_launch_command,
        remote::mirai_tls_zero_config,
        aio::mirai_async,
        go::mirai_go,
        aio::mirai_wrap,
        aio::mirai_data,
        aio::mirai_value,
        aio::mirai_collect,
        aio::mirai_stop,
        chunk::mirai_submit_chunk,
        evaluate::mirai_eval,
        evaluate::mirai_dirty,
        evaluate::mirai_clean,
        codes::mirai_error_text,
    ]
}

/// The routine table, after the process-wide set-up (the engine's logger).
fn setup() -> Vec<CallMethod> {
    remote::install_logger();
    routines()
}

// `mirai_rust_init(DllInfo*)`: registers the `.Call` routines; called by `R_init_mirai`
// (`rpkg/src/init.c`) when R loads `mirai.so`. The crate's one exported symbol, defined by
// mirai-rapi so that this crate needs no `no_mangle`.
mirai_rapi::package_init!(mirai_rust_init, setup);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routine_table_is_complete_and_documented() {
        let t = routines();
        assert_eq!(t.len(), 41);
        let names: Vec<String> = t.iter().map(|r| r.name().to_owned()).collect();
        let doc = include_str!("../../docs/r-bridge.md");
        for n in &names {
            assert!(
                doc.contains(&format!("`{n}`")),
                "{n} is not documented in docs/r-bridge.md"
            );
        }
        let mut sorted = names.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), names.len());
    }
}
