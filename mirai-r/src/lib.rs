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
//! at the outermost level of a routine, after its Rust values are dropped (module `guard`).

mod aio;
mod chunk;
mod daemon;
mod evaluate;
mod fastser;
mod ffi;
mod guard;
mod handles;
mod later;
mod remote;
mod serial;
mod sexp;
mod tls;
mod wait;

use std::os::raw::{c_char, c_int, c_void};

use libR_sys::{DllInfo, R_CallMethodDef, R_registerRoutines, R_useDynamicSymbols, Rboolean};

pub use aio::{
    mirai_aio, mirai_async, mirai_attempts_of, mirai_collect, mirai_data, mirai_go, mirai_pending,
    mirai_stop, mirai_value, mirai_wrap,
};
pub use chunk::mirai_submit_chunk;
pub use daemon::mirai_daemon_run;
pub use evaluate::{mirai_clean, mirai_dirty, mirai_eval};
pub use handles::{
    mirai_cancel, mirai_everywhere, mirai_host_admit, mirai_host_exit_daemons, mirai_host_launch,
    mirai_host_map_span, mirai_host_reset, mirai_host_start, mirai_host_status, mirai_host_url,
    mirai_host_wait_admit, mirai_host_wait_connections, mirai_keyed_tasks, mirai_race,
    mirai_resolved, mirai_serialize, mirai_submit, mirai_take, mirai_unserialize, mirai_wait,
};
pub use later::mirai_later;
pub use remote::{mirai_daemon_args, mirai_launch_command, mirai_tls_zero_config};
pub use tls::mirai_tls_generate;

/// One registration entry: the routine's name (NUL-terminated), address and arity.
macro_rules! routine {
    ($name:ident, $n:literal) => {
        R_CallMethodDef {
            name: concat!(stringify!($name), "\0").as_ptr() as *const c_char,
            // SAFETY: R stores routines as a generic function pointer and calls them back with
            // exactly `numArgs` SEXP arguments, which is each routine's real signature.
            fun: Some(unsafe {
                std::mem::transmute::<*const (), unsafe extern "C" fn() -> *mut c_void>(
                    $name as *const (),
                )
            }),
            numArgs: $n,
        }
    };
}

/// The routines and their arities (docs/r-bridge.md).
fn routines() -> Vec<R_CallMethodDef> {
    vec![
        routine!(mirai_host_start, 6),
        routine!(mirai_host_map_span, 2),
        routine!(mirai_aio, 1),
        routine!(mirai_attempts_of, 1),
        routine!(mirai_host_url, 1),
        routine!(mirai_host_reset, 2),
        routine!(mirai_host_status, 1),
        routine!(mirai_host_wait_connections, 3),
        routine!(mirai_host_launch, 3),
        routine!(mirai_host_admit, 1),
        routine!(mirai_host_wait_admit, 2),
        routine!(mirai_host_exit_daemons, 1),
        routine!(mirai_submit, 4),
        routine!(mirai_everywhere, 4),
        routine!(mirai_pending, 1),
        routine!(mirai_keyed_tasks, 0),
        routine!(mirai_resolved, 1),
        routine!(mirai_take, 3),
        routine!(mirai_wait, 2),
        routine!(mirai_race, 2),
        routine!(mirai_cancel, 2),
        routine!(mirai_serialize, 2),
        routine!(mirai_unserialize, 2),
        routine!(mirai_daemon_run, 8),
        routine!(mirai_later, 3),
        routine!(mirai_tls_generate, 1),
        routine!(mirai_daemon_args, 2),
        routine!(mirai_launch_command, 3),
        routine!(mirai_tls_zero_config, 1),
        routine!(mirai_async, 4),
        routine!(mirai_go, 6),
        routine!(mirai_wrap, 2),
        routine!(mirai_data, 1),
        routine!(mirai_value, 1),
        routine!(mirai_collect, 2),
        routine!(mirai_stop, 1),
        routine!(mirai_submit_chunk, 4),
        routine!(mirai_eval, 4),
        routine!(mirai_dirty, 1),
        routine!(mirai_clean, 1),
        R_CallMethodDef {
            name: std::ptr::null(),
            fun: None,
            numArgs: 0,
        },
    ]
}

/// Registers the `.Call` routines; called by `R_init_mirai` when R loads `mirai.so`.
///
/// # Safety
/// Called by R (through `R_init_mirai`) on its main thread with the package's `DllInfo`.
#[no_mangle]
pub unsafe extern "C" fn mirai_rust_init(dll: *mut DllInfo) -> c_int {
    // R copies what it needs from the table, but keeping it alive costs nothing and is safe
    // whatever R's version does.
    remote::install_logger();
    let table: &'static [R_CallMethodDef] = Box::leak(routines().into_boxed_slice());
    R_registerRoutines(
        dll,
        std::ptr::null(),
        table.as_ptr(),
        std::ptr::null(),
        std::ptr::null(),
    );
    R_useDynamicSymbols(dll, Rboolean::FALSE);
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routine_table_is_complete_and_terminated() {
        let t = routines();
        assert_eq!(t.len(), 41);
        assert!(t
            .last()
            .is_some_and(|r| r.name.is_null() && r.fun.is_none()));
        let names: Vec<String> = t[..t.len() - 1]
            .iter()
            // SAFETY: every name is a NUL-terminated static string.
            .map(|r| {
                unsafe { std::ffi::CStr::from_ptr(r.name) }
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
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
