//! The R bridge of nanonext: the `.Call` routines of the R package `nanonext`, on the safe R
//! layer (`mirai_rapi`) and the engine's protocol crates.
//!
//! This crate is built as a static library and linked into the package's `nanonext.so` (see
//! `rpkg/src/Makevars`); `R_init_nanonext` (in `rpkg/src/init.c`) calls
//! [`nanonext_rust_init`], which registers every routine. The R API the package offers is the
//! contract `shared/spec/nanonext-api.md`; the R code lives in `rpkg/R`.
//!
//! What it is not: mirai (whose objects it reads only through `mirai_rapi::abi`), nor the
//! protocols themselves (`mirai-sp`).

#![forbid(unsafe_code)]

mod aio;
mod aioq;
mod codes;
mod cv;
mod cvr;
mod keep;
mod slot;
mod timer;
mod tlsr;
mod url;
mod utils;

use mirai_rapi::CallMethod;

/// The routines: each registered under its function's name, with the arity of its signature.
fn routines() -> Vec<CallMethod> {
    mirai_rapi::routines![
        cvr::nano_cv,
        cvr::nano_cv_value,
        cvr::nano_cv_signal,
        cvr::nano_cv_until,
        cvr::nano_cv_reset,
        cvr::nano_cv_wait,
        cvr::nano_cv_forward,
        cvr::nano_cv_pipe_event,
        aioq::nano_unresolved,
        aioq::nano_unresolved2,
        aioq::nano_call_aio,
        aioq::nano_collect_aio,
        aioq::nano_stop_aio,
        aioq::nano_race_aio,
        codes::nano_nng_error,
        utils::nano_mclock,
        utils::nano_msleep,
        utils::nano_random,
        utils::nano_ip_addr,
        utils::nano_version,
        utils::nano_mark,
        utils::nano_advance,
        utils::nano_write_stdout,
        url::nano_parse_url,
        url::nano_status_code,
        tlsr::nano_tls_config,
        tlsr::nano_write_cert,
        aio::nano_aio_init,
        aio::nano_aio_get,
        timer::nano_timer_aio,
        timer::nano_foreign_timer,
        timer::nano_foreign_get,
        keep::nano_keep,
    ]
}

// `nanonext_rust_init(DllInfo*)`: registers the `.Call` routines; called by `R_init_nanonext`.
mirai_rapi::package_init!(nanonext_rust_init, routines);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routine_names_are_unique() {
        let mut names: Vec<String> = routines().iter().map(|r| r.name().to_owned()).collect();
        let n = names.len();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), n);
    }
}
