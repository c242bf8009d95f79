//! `.Call` routines: the `extern "C"` wrapper of each, and its registration entry, generated
//! from the Rust function itself.
//!
//! A routine is a plain Rust function `fn(&Scope, Sexp<'a>, ...) -> RResult<Sexp<'a>>`. Its
//! wrapper is a trampoline monomorphised for that function: the arity R is told is the number
//! of `Sexp` parameters of the function's type, so it cannot disagree with the signature. The
//! trampoline makes the call's root [`Scope`], runs the body under `catch_unwind`, drops the
//! scope and every Rust value, and only then raises an error to R (see [`crate::guard`]).

use std::ffi::CStr;
use std::os::raw::{c_char, c_int, c_void};

use libR_sys::*;

use crate::guard::{run_body, Pending, RResult};
use crate::scope::Scope;
use crate::sexp::Sexp;

/// A Rust function usable as a `.Call` routine; implemented for functions of every supported
/// arity (0 to 10 arguments). `Args` only tells the arities apart.
pub trait Routine<Args>: Copy + 'static {
    /// The number of R arguments.
    const ARITY: c_int;
    /// The trampoline R calls, type-erased as R stores it.
    fn wrapper(self) -> DL_FUNC;
}

/// Runs routine `f` for R: the value, or an R error raised after everything is dropped.
fn call<F>(f: F) -> SEXP
where
    F: for<'a> FnOnce(&'a Scope<'static>) -> RResult<Sexp<'a>>,
{
    let outcome = {
        // SAFETY: R calls registered routines on its main thread; the scope is dropped at the
        // end of this block, before returning to R.
        let root = unsafe { Scope::root() };
        run_body(|| f(&root).map(|v| v.raw()))
    };
    match outcome {
        // Unprotected by now, and handed to R at once with nothing allocated in between.
        Ok(v) => v,
        // SAFETY: only plain data is alive in this frame; we are inside .Call.
        Err(p) => unsafe { Pending::raise(p) },
    }
}

/// Conjures the (zero-sized) function item or capture-free closure `F`.
fn conjure<F: Copy>() -> F {
    const {
        assert!(
            std::mem::size_of::<F>() == 0,
            "a routine must be a plain function"
        )
    };
    // SAFETY: F is a zero-sized Copy type (asserted at compile time): a function item or a
    // closure capturing nothing, which has no bytes to be invalid. Its value was proven to
    // exist by `wrapper(self)`.
    unsafe { std::mem::zeroed() }
}

macro_rules! arity {
    ($n:literal $(, $a:ident)*) => {
        impl<F> Routine<[(); $n]> for F
        where
            F: for<'a> Fn(&'a Scope<'static> $(, arity!(@sexp $a))*) -> RResult<Sexp<'a>>
                + Copy
                + 'static,
        {
            const ARITY: c_int = $n;

            fn wrapper(self) -> DL_FUNC {
                extern "C" fn tramp<F>($($a: SEXP),*) -> SEXP
                where
                    F: for<'a> Fn(&'a Scope<'static> $(, arity!(@sexp $a))*) -> RResult<Sexp<'a>>
                        + Copy
                        + 'static,
                {
                    let f = conjure::<F>();
                    // SAFETY: R passes live arguments, alive for the whole call.
                    call(|s| f(s $(, unsafe { Sexp::from_raw($a) })*))
                }
                let t: extern "C" fn($(arity!(@raw $a)),*) -> SEXP = tramp::<F>;
                // SAFETY: R stores routines as a generic function pointer and calls them back
                // with exactly ARITY SEXP arguments, the trampoline's real signature.
                Some(unsafe {
                    std::mem::transmute::<extern "C" fn($(arity!(@raw $a)),*) -> SEXP, unsafe extern "C" fn() -> *mut c_void>(t)
                })
            }
        }
    };
    (@sexp $a:ident) => { Sexp<'a> };
    (@raw $a:ident) => { SEXP };
}

arity!(0);
arity!(1, a1);
arity!(2, a1, a2);
arity!(3, a1, a2, a3);
arity!(4, a1, a2, a3, a4);
arity!(5, a1, a2, a3, a4, a5);
arity!(6, a1, a2, a3, a4, a5, a6);
arity!(7, a1, a2, a3, a4, a5, a6, a7);
arity!(8, a1, a2, a3, a4, a5, a6, a7, a8);
arity!(9, a1, a2, a3, a4, a5, a6, a7, a8, a9);
arity!(10, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10);

/// One registration entry: a routine's name, wrapper and arity.
#[derive(Clone, Copy)]
pub struct CallMethod {
    name: &'static CStr,
    fun: DL_FUNC,
    arity: c_int,
}

impl CallMethod {
    /// The entry for routine `f` registered as `name` (a NUL-terminated name, as
    /// [`routines!`](crate::routines) writes it).
    pub fn new<Args, F: Routine<Args>>(name: &'static str, f: F) -> CallMethod {
        let name = match CStr::from_bytes_with_nul(name.as_bytes()) {
            Ok(n) => n,
            Err(_) => panic!("a routine name must end with one NUL"),
        };
        CallMethod {
            name,
            fun: f.wrapper(),
            arity: F::ARITY,
        }
    }

    /// The name R calls the routine by.
    pub fn name(&self) -> &'static str {
        self.name.to_str().unwrap_or("")
    }

    /// The number of arguments R passes.
    pub fn arity(&self) -> i32 {
        self.arity
    }
}

/// The `DllInfo` R hands to a package's init function (opaque: only R makes one).
#[repr(transparent)]
pub struct Dll(*mut DllInfo);

/// Registers `routines` for the package `dll` and turns off dynamic symbol lookup, so that
/// `.Call` finds only them. Called from the package's init function (`R_init_<pkg>`).
pub fn register(dll: Dll, routines: &[CallMethod]) {
    let mut table: Vec<R_CallMethodDef> = routines
        .iter()
        .map(|m| R_CallMethodDef {
            name: m.name.as_ptr() as *const c_char,
            fun: m.fun,
            numArgs: m.arity,
        })
        .collect();
    table.push(R_CallMethodDef {
        name: std::ptr::null(),
        fun: None,
        numArgs: 0,
    });
    // R copies what it needs from the table, but keeping it alive costs nothing and is safe
    // whatever R's version does.
    let table: &'static [R_CallMethodDef] = Box::leak(table.into_boxed_slice());
    // SAFETY: `dll` came from R (only R makes a Dll) and we are in its init call, on the main
    // thread; the table is NULL-terminated and lives forever.
    unsafe {
        R_registerRoutines(
            dll.0,
            std::ptr::null(),
            table.as_ptr(),
            std::ptr::null(),
            std::ptr::null(),
        );
        R_useDynamicSymbols(dll.0, Rboolean::FALSE);
    }
}

/// The registration entries of routines `module::name, ...`: each is registered under its
/// function's name, with its wrapper and arity derived from its signature.
///
/// ```ignore
/// let table = mirai_rapi::routines![aio::mirai_aio, handles::mirai_submit];
/// ```
#[macro_export]
macro_rules! routines {
    ($($m:ident :: $name:ident),* $(,)?) => {
        vec![$($crate::CallMethod::new(concat!(stringify!($name), "\0"), $m::$name)),*]
    };
}

/// Runs a package's init function: `setup` (which returns the routine table) under
/// [`crate::quietly`]-style panic containment, then [`register`]. What [`package_init!`]
/// expands to; 0 on success, 1 if `setup` panicked (nothing is registered then).
pub fn init(dll: Dll, setup: fn() -> Vec<CallMethod>) -> c_int {
    match std::panic::catch_unwind(setup) {
        Ok(table) => {
            register(dll, &table);
            0
        }
        Err(_) => 1,
    }
}

/// Defines the package's exported init function `$name(DllInfo*) -> int`, called from the
/// package's `R_init_<pkg>` in C: it runs `$setup` (a `fn() -> Vec<CallMethod>`, typically
/// some process set-up and then [`routines!`](crate::routines)) and registers the routines
/// it returns. The export (`#[no_mangle]`) is written here so that the bridge crate itself
/// can forbid `unsafe_code`.
///
/// ```ignore
/// mirai_rapi::package_init!(mirai_rust_init, routines);
/// ```
#[macro_export]
macro_rules! package_init {
    ($name:ident, $setup:path) => {
        /// The package's init function (see `mirai_rapi::package_init!`).
        #[no_mangle]
        pub extern "C" fn $name(dll: $crate::Dll) -> ::std::os::raw::c_int {
            $crate::routine::init(dll, $setup)
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    fn none<'a>(_s: &'a Scope) -> RResult<Sexp<'a>> {
        Ok(Sexp::null())
    }

    fn three<'a>(_s: &'a Scope, a: Sexp<'a>, _b: Sexp<'_>, _c: Sexp<'_>) -> RResult<Sexp<'a>> {
        Ok(a)
    }

    mod m {
        use super::*;
        #[allow(clippy::too_many_arguments)]
        pub(super) fn ten<'a>(
            _s: &'a Scope,
            a: Sexp<'a>,
            _: Sexp<'a>,
            _: Sexp<'a>,
            _: Sexp<'a>,
            _: Sexp<'a>,
            _: Sexp<'a>,
            _: Sexp<'a>,
            _: Sexp<'a>,
            _: Sexp<'a>,
            _: Sexp<'a>,
        ) -> RResult<Sexp<'a>> {
            Ok(a)
        }
    }

    #[test]
    fn arity_comes_from_the_signature() {
        assert_eq!(CallMethod::new("none\0", none).arity(), 0);
        assert_eq!(CallMethod::new("three\0", three).arity(), 3);
        let t = crate::routines![m::ten];
        assert_eq!((t[0].name(), t[0].arity()), ("ten", 10));
        assert!(t[0].fun.is_some());
    }

    #[test]
    #[should_panic(expected = "NUL")]
    fn names_must_be_nul_terminated() {
        CallMethod::new("none", none);
    }
}
