//! Tables keyed by the identity of R objects, whose entries go when their key is collected:
//! each entry holds a weak reference on its key (`R_MakeWeakRefC`) whose finalizer removes it.
//!
//! The table owns the invariant that makes the weak references safe to hold: an entry exists
//! exactly while its weak reference has not been finalized (R keeps a weak reference alive in
//! its own list until then). The finalizer removes the entry; [`WeakTable::release`] removes
//! it first and then runs the finalizer at once, which frees the weak reference now instead of
//! at the collection after the key's.

use std::cell::RefCell;
use std::collections::HashMap;
use std::marker::PhantomData;
use std::rc::Rc;

use libR_sys::*;

use crate::guard::quietly;
use crate::sexp::Sexp;
use crate::token::R;

struct Entry<T> {
    weak: SEXP,
    value: Rc<T>,
}

/// The storage of a [`WeakTable`]: put one in a `thread_local!` (R objects are main-thread
/// only). Borrowed only for a lookup, an insertion or a removal, never while R code runs, so
/// a finalizer (run by R only from inside its API) always finds it free.
pub struct WeakMap<T> {
    map: RefCell<HashMap<usize, Entry<T>>>,
}

impl<T> Default for WeakMap<T> {
    fn default() -> Self {
        WeakMap {
            map: RefCell::new(HashMap::new()),
        }
    }
}

impl<T> WeakMap<T> {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }
}

/// A weak reference on a key, made by [`WeakTable::watch`] and consumed by
/// [`WeakTable::insert`]. Dropping it unused is harmless: its finalizer finds no entry.
pub struct Watch<'a, K> {
    weak: SEXP,
    key: usize,
    _key: PhantomData<Sexp<'a>>,
    _table: PhantomData<K>,
}

/// A table of `Value`s keyed by R objects (by address: R never moves objects), implemented
/// for a marker type naming the table's `thread_local!` storage.
///
/// ```ignore
/// thread_local! { static TASKS: WeakMap<Task> = WeakMap::new(); }
/// struct Tasks;
/// impl WeakTable for Tasks {
///     type Value = Task;
///     fn with<X>(f: impl FnOnce(&WeakMap<Task>) -> X) -> X { TASKS.with(f) }
/// }
/// ```
pub trait WeakTable: Sized + 'static {
    /// What an entry holds.
    type Value: 'static;

    /// Runs `f` on the table's storage.
    fn with<X>(f: impl FnOnce(&WeakMap<Self::Value>) -> X) -> X;

    /// A weak reference on `key`, for an entry to be inserted: made first, so that a failure
    /// here (R out of memory) leaves nothing behind to clean up.
    fn watch(key: Sexp<'_>) -> Watch<'_, Self> {
        // SAFETY: main thread (a Sexp exists only there), a live key; R links the new weak
        // reference into its list of weak references at once, which keeps it alive until its
        // finalizer has run.
        let weak = unsafe {
            R_MakeWeakRefC(
                key.raw(),
                R_NilValue,
                Some(finalize::<Self>),
                Rboolean::FALSE,
            )
        };
        Watch {
            weak,
            key: key.addr(),
            _key: PhantomData,
            _table: PhantomData,
        }
    }

    /// Stores `value` under the key of `watch` (replacing, and dropping, a previous value).
    fn insert(watch: Watch<'_, Self>, value: Self::Value) {
        let entry = Entry {
            weak: watch.weak,
            value: Rc::new(value),
        };
        let old = Self::with(|m| m.map.borrow_mut().insert(watch.key, entry));
        drop(old);
    }

    /// The value under `key`, shared: it stays alive while used even if its entry goes
    /// meanwhile.
    fn get(key: Sexp<'_>) -> Option<Rc<Self::Value>> {
        Self::with(|m| m.map.borrow().get(&key.addr()).map(|e| Rc::clone(&e.value)))
    }

    /// Whether `key` has an entry.
    fn contains(key: Sexp<'_>) -> bool {
        Self::with(|m| m.map.borrow().contains_key(&key.addr()))
    }

    /// Removes the entry of `key`, if any, and runs its weak reference's finalizer now (see the
    /// module docs). True if there was one.
    fn release(_r: R, key: Sexp<'_>) -> bool {
        let gone = Self::with(|m| m.map.borrow_mut().remove(&key.addr()));
        match gone {
            Some(e) => {
                // SAFETY: main thread (token); the entry existed, so its weak reference was not
                // finalized and is alive (see the module docs). Its finalizer is `finalize`,
                // which cannot jump and finds the entry already gone.
                unsafe { R_RunWeakRefFinalizer(e.weak) };
                drop(e.value);
                true
            }
            None => false,
        }
    }

    /// The number of entries.
    fn len() -> usize {
        Self::with(|m| m.map.borrow().len())
    }
}

/// The finalizer of an entry's weak reference: R calls it with the key, on the main thread.
extern "C" fn finalize<K: WeakTable>(key: SEXP) {
    quietly(|| {
        // The value is dropped after the table is released (its drop may reach the table).
        let gone = K::with(|m| {
            m.map
                .try_borrow_mut()
                .ok()
                .and_then(|mut t| t.remove(&(key as usize)))
        });
        drop(gone);
    });
}
