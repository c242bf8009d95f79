//! A fast path for R serialization (version 3, native binary format) of plain data: the
//! objects every task carries (the payload list, its expression, scalar results, atomic
//! vectors, lists, calls, attributes such as names and classes).
//!
//! Why: R's `R_Serialize` allocates a 1,099-slot reference hash table for every call (an 8.8 KB
//! vector, zeroed, that the garbage collector must later reclaim) and `R_Unserialize` a
//! 128-slot one. For a task's few dozen bytes that is most of the cost of serializing it, on
//! the host and on the daemon, and the churn makes R collect garbage far more often.
//!
//! What: the writer emits exactly the bytes `serialize(x, NULL, xdr = FALSE, version = 3)`
//! would (same header, flags, reference indices for symbols, lengths and data), and the reader
//! builds exactly the objects `unserialize()` would, for these types: `NULL` and the other
//! special values R writes as markers, symbols (with back-references), pairlists and calls,
//! strings, logical, integer, double, complex, character and raw vectors, lists and
//! expression vectors, all with any attributes. Anything else (environments, closures,
//! external pointers, S4 objects, ALTREP vectors, byte code, persistent references, a header
//! from another R version or encoding) makes the fast path give up, and R's own
//! implementation does the whole job: the result is the same, only slower.

// Not yet ported to mirai_rapi's safe API: raw R calls, each under the rules its comments state.
#![allow(unsafe_code)]

use std::cell::RefCell;
use std::collections::HashMap;

use mirai_rapi::sys::*;

use crate::sexp::Protector;
use mirai_rapi::ffi::{LEVELS, SETLEVELS};
use mirai_rapi::guard::protect_raw as protect;

// Item codes of R's serialization format (serialize.c).
const REFSXP: i32 = 255;
const NILVALUE_SXP: i32 = 254;
const GLOBALENV_SXP: i32 = 253;
const UNBOUNDVALUE_SXP: i32 = 252;
const MISSINGARG_SXP: i32 = 251;
const BASENAMESPACE_SXP: i32 = 247;
const EMPTYENV_SXP: i32 = 242;
const BASEENV_SXP: i32 = 241;

const SYMSXP: i32 = 1;
const LISTSXP: i32 = 2;
const LANGSXP: i32 = 6;
const CHARSXP: i32 = 9;
const LGLSXP: i32 = 10;
const INTSXP: i32 = 13;
const REALSXP: i32 = 14;
const CPLXSXP: i32 = 15;
const STRSXP: i32 = 16;
const VECSXP: i32 = 19;
const EXPRSXP: i32 = 20;
const RAWSXP: i32 = 24;

const IS_OBJECT_BIT: i32 = 1 << 8;
const HAS_ATTR_BIT: i32 = 1 << 9;
const HAS_TAG_BIT: i32 = 1 << 10;
// CHARSXP levels: R masks its cache bits when writing.
const CACHED_MASK: i32 = 1 << 5;
const HASHASH_MASK: i32 = 1;
const UTF8_MASK: i32 = 1 << 3;
const LATIN1_MASK: i32 = 1 << 2;
const BYTES_MASK: i32 = 1 << 1;

/// Deeper nesting than this is left to R (which guards its own C stack).
const MAX_DEPTH: u32 = 256;

thread_local! {
    /// The header R writes before the first item (format, versions, native encoding).
    static HEADER: RefCell<Option<Vec<u8>>> = const { RefCell::new(None) };
}

/// Calls `f` with the serialization header of this R session, learnt once from R itself
/// (`serialize(NULL)` minus its one item); `None` if it could not be learnt.
unsafe fn with_header<T>(f: impl FnOnce(&[u8]) -> T) -> Option<T> {
    let known = HEADER.with(|h| h.borrow().is_some());
    if !known {
        let full = crate::serial::r_serialize_plain(R_NilValue).ok()?;
        let h = full.get(..full.len().checked_sub(4)?)?.to_vec();
        if full.get(h.len()..)? != NILVALUE_SXP.to_ne_bytes() || h.first() != Some(&b'B') {
            return None;
        }
        HEADER.with(|c| *c.borrow_mut() = Some(h));
    }
    HEADER.with(|h| h.borrow().as_deref().map(f))
}

/// The fast path does not cover this object.
struct Unsupported;

struct Writer {
    buf: Vec<u8>,
    /// Symbols written so far, in order (reference index = position + 1); searched linearly
    /// while short, through `index` once long.
    syms: Vec<SEXP>,
    index: HashMap<usize, i32>,
}

impl Writer {
    fn int(&mut self, i: i32) {
        self.buf.extend_from_slice(&i.to_ne_bytes());
    }

    /// The reference index of a symbol already written.
    fn sym_index(&self, s: SEXP) -> Option<i32> {
        if self.index.is_empty() {
            self.syms.iter().position(|&x| x == s).map(|k| k as i32 + 1)
        } else {
            self.index.get(&(s as usize)).copied()
        }
    }

    fn bytes(&mut self, b: &[u8]) {
        self.buf.extend_from_slice(b);
    }

    unsafe fn length(&mut self, s: SEXP) {
        let n = Rf_xlength(s);
        if n > i32::MAX as R_xlen_t {
            self.int(-1);
            self.int((n >> 32) as i32);
            self.int((n & 0xffff_ffff) as i32);
        } else {
            self.int(n as i32);
        }
    }

    unsafe fn data<T>(&mut self, p: *const T, n: R_xlen_t) {
        let len = n as usize * std::mem::size_of::<T>();
        if len > 0 {
            self.bytes(std::slice::from_raw_parts(p as *const u8, len));
        }
    }

    unsafe fn special(s: SEXP) -> Option<i32> {
        if s == R_NilValue {
            Some(NILVALUE_SXP)
        } else if s == R_EmptyEnv {
            Some(EMPTYENV_SXP)
        } else if s == R_BaseEnv {
            Some(BASEENV_SXP)
        } else if s == R_GlobalEnv {
            Some(GLOBALENV_SXP)
        } else if s == R_UnboundValue {
            Some(UNBOUNDVALUE_SXP)
        } else if s == R_MissingArg {
            Some(MISSINGARG_SXP)
        } else if s == R_BaseNamespace {
            Some(BASENAMESPACE_SXP)
        } else {
            None
        }
    }

    unsafe fn charsxp(&mut self, c: SEXP) {
        let levs = LEVELS(c) & !(CACHED_MASK | HASHASH_MASK);
        self.int(CHARSXP | (levs << 12));
        if c == R_NaString {
            self.int(-1);
        } else {
            let n = Rf_xlength(c);
            self.int(n as i32);
            self.data(R_CHAR(c) as *const u8, n);
        }
    }

    unsafe fn item(&mut self, mut s: SEXP, depth: u32) -> Result<(), Unsupported> {
        if depth > MAX_DEPTH {
            return Err(Unsupported);
        }
        loop {
            if let Some(code) = Self::special(s) {
                self.int(code);
                return Ok(());
            }
            if ALTREP(s) != 0 {
                return Err(Unsupported);
            }
            let ty = TYPEOF(s) as i32;
            if ty == SYMSXP {
                if let Some(i) = self.sym_index(s) {
                    self.int((i << 8) | REFSXP);
                } else {
                    let i = self.syms.len() as i32 + 1;
                    if i > (i32::MAX >> 8) {
                        return Err(Unsupported);
                    }
                    self.syms.push(s);
                    if !self.index.is_empty() || self.syms.len() > 16 {
                        if self.index.is_empty() {
                            self.index = self
                                .syms
                                .iter()
                                .enumerate()
                                .map(|(k, &x)| (x as usize, k as i32 + 1))
                                .collect();
                        } else {
                            self.index.insert(s as usize, i);
                        }
                    }
                    self.int(SYMSXP);
                    self.charsxp(PRINTNAME(s));
                }
                return Ok(());
            }
            let attrib = ATTRIB(s);
            let hasattr = ty != CHARSXP && attrib != R_NilValue;
            let hastag = (ty == LISTSXP || ty == LANGSXP) && TAG(s) != R_NilValue;
            let mut flags = ty | (LEVELS(s) << 12);
            match ty {
                LISTSXP | LANGSXP | LGLSXP | INTSXP | REALSXP | CPLXSXP | STRSXP | VECSXP
                | EXPRSXP | RAWSXP => {}
                CHARSXP => {
                    self.charsxp(s);
                    return Ok(());
                }
                _ => return Err(Unsupported),
            }
            if OBJECT(s) != 0 {
                flags |= IS_OBJECT_BIT;
            }
            if hasattr {
                flags |= HAS_ATTR_BIT;
            }
            if hastag {
                flags |= HAS_TAG_BIT;
            }
            self.int(flags);
            match ty {
                LISTSXP | LANGSXP => {
                    // ATTRIB, TAG, CAR, then the CDR as the next item (iteratively).
                    if hasattr {
                        self.item(attrib, depth + 1)?;
                    }
                    if hastag {
                        self.item(TAG(s), depth + 1)?;
                    }
                    self.item(CAR(s), depth + 1)?;
                    s = CDR(s);
                    continue;
                }
                LGLSXP => {
                    self.length(s);
                    self.data(LOGICAL(s), Rf_xlength(s));
                }
                INTSXP => {
                    self.length(s);
                    self.data(INTEGER(s), Rf_xlength(s));
                }
                REALSXP => {
                    self.length(s);
                    self.data(REAL(s), Rf_xlength(s));
                }
                CPLXSXP => {
                    self.length(s);
                    self.data(COMPLEX(s), Rf_xlength(s));
                }
                RAWSXP => {
                    self.length(s);
                    self.data(RAW(s), Rf_xlength(s));
                }
                STRSXP => {
                    self.length(s);
                    for i in 0..Rf_xlength(s) {
                        let c = STRING_ELT(s, i);
                        if TYPEOF(c) as i32 != CHARSXP {
                            return Err(Unsupported);
                        }
                        self.charsxp(c);
                    }
                }
                _ => {
                    // VECSXP, EXPRSXP
                    self.length(s);
                    for i in 0..Rf_xlength(s) {
                        self.item(VECTOR_ELT(s, i), depth + 1)?;
                    }
                }
            }
            if hasattr {
                self.item(attrib, depth + 1)?;
            }
            return Ok(());
        }
    }
}

/// Appends the serialization of `x` to `buf` if the fast path covers it (true), else leaves
/// `buf` as it was (false). Never calls R code that could jump, except R_Serialize once per
/// session to learn the header.
///
/// # Safety
/// Main thread; `x` protected.
pub(crate) unsafe fn write(x: SEXP, buf: &mut Vec<u8>) -> bool {
    let start = buf.len();
    let mut w = Writer {
        buf: std::mem::take(buf),
        syms: Vec::new(),
        index: HashMap::new(),
    };
    w.buf.reserve(256);
    if with_header(|h| w.bytes(h)).is_none() {
        *buf = w.buf;
        return false;
    }
    let ok = w.item(x, 0).is_ok();
    *buf = w.buf;
    if !ok {
        buf.truncate(start);
    }
    ok
}

/// Why the fast reader stopped: R's reader takes over in every case.
struct GiveUp;

struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
    /// Symbols read so far (reference index - 1). Symbols are never collected.
    syms: Vec<SEXP>,
}

impl Reader<'_> {
    fn int(&mut self) -> Result<i32, GiveUp> {
        let b = self.data.get(self.pos..self.pos + 4).ok_or(GiveUp)?;
        self.pos += 4;
        Ok(i32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn take(&mut self, n: usize) -> Result<&[u8], GiveUp> {
        let end = self.pos.checked_add(n).ok_or(GiveUp)?;
        let b = self.data.get(self.pos..end).ok_or(GiveUp)?;
        self.pos = end;
        Ok(b)
    }

    fn length(&mut self) -> Result<R_xlen_t, GiveUp> {
        let n = self.int()?;
        if n >= 0 {
            return Ok(n as R_xlen_t);
        }
        if n != -1 {
            return Err(GiveUp);
        }
        let hi = self.int()? as u32 as i64;
        let lo = self.int()? as u32 as i64;
        Ok(((hi << 32) + lo) as R_xlen_t)
    }

    /// A vector's data: checks the bytes are there before R allocates anything.
    unsafe fn vector(&mut self, ty: SEXPTYPE, n: R_xlen_t, size: usize) -> Result<SEXP, GiveUp> {
        let len = (n as usize).checked_mul(size).ok_or(GiveUp)?;
        let bytes = self.take(len)?;
        let v = Rf_allocVector(ty, n);
        if len > 0 {
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), DATAPTR(v) as *mut u8, len);
        }
        Ok(v)
    }

    unsafe fn charsxp(&mut self, levs: i32) -> Result<SEXP, GiveUp> {
        let n = self.int()?;
        if n == -1 {
            return Ok(R_NaString);
        }
        let n = usize::try_from(n).map_err(|_| GiveUp)?;
        let bytes = self.take(n)?;
        if bytes.contains(&0) {
            return Err(GiveUp);
        }
        let enc = if levs & UTF8_MASK != 0 {
            cetype_t::CE_UTF8
        } else if levs & LATIN1_MASK != 0 {
            cetype_t::CE_LATIN1
        } else if levs & BYTES_MASK != 0 {
            cetype_t::CE_BYTES
        } else {
            cetype_t::CE_NATIVE
        };
        Ok(Rf_mkCharLenCE(bytes.as_ptr() as *const _, n as i32, enc))
    }

    /// Reads one item; the result is unprotected.
    unsafe fn item(&mut self, depth: u32) -> Result<SEXP, GiveUp> {
        if depth > MAX_DEPTH {
            return Err(GiveUp);
        }
        let flags = self.int()?;
        let ty = flags & 0xff;
        let levs = flags >> 12;
        let objf = flags & IS_OBJECT_BIT != 0;
        let hasattr = flags & HAS_ATTR_BIT != 0;
        let hastag = flags & HAS_TAG_BIT != 0;
        match ty {
            NILVALUE_SXP => return Ok(R_NilValue),
            EMPTYENV_SXP => return Ok(R_EmptyEnv),
            BASEENV_SXP => return Ok(R_BaseEnv),
            GLOBALENV_SXP => return Ok(R_GlobalEnv),
            UNBOUNDVALUE_SXP => return Ok(R_UnboundValue),
            MISSINGARG_SXP => return Ok(R_MissingArg),
            BASENAMESPACE_SXP => return Ok(R_BaseNamespace),
            REFSXP => {
                let i = if flags >> 8 == 0 {
                    self.int()?
                } else {
                    flags >> 8
                };
                return self
                    .syms
                    .get((i as usize).wrapping_sub(1))
                    .copied()
                    .ok_or(GiveUp);
            }
            SYMSXP => {
                let cflags = self.int()?;
                if cflags & 0xff != CHARSXP {
                    return Err(GiveUp);
                }
                let mut p = Protector::new();
                let c = p.protect(self.charsxp(cflags >> 12)?);
                if c == R_NaString {
                    return Err(GiveUp);
                }
                let s = Rf_installTrChar(c);
                self.syms.push(s);
                return Ok(s);
            }
            LISTSXP | LANGSXP => return self.pairlist(flags, depth),
            CHARSXP => {
                let c = self.charsxp(levs)?;
                if hasattr {
                    return Err(GiveUp);
                }
                return Ok(c);
            }
            _ => {}
        }
        if hastag {
            return Err(GiveUp);
        }
        let mut p = Protector::new();
        let s = match ty {
            LGLSXP => {
                let n = self.length()?;
                p.protect(self.vector(SEXPTYPE::LGLSXP, n, 4)?)
            }
            INTSXP => {
                let n = self.length()?;
                p.protect(self.vector(SEXPTYPE::INTSXP, n, 4)?)
            }
            REALSXP => {
                let n = self.length()?;
                p.protect(self.vector(SEXPTYPE::REALSXP, n, 8)?)
            }
            CPLXSXP => {
                let n = self.length()?;
                p.protect(self.vector(SEXPTYPE::CPLXSXP, n, 16)?)
            }
            RAWSXP => {
                let n = self.length()?;
                p.protect(self.vector(SEXPTYPE::RAWSXP, n, 1)?)
            }
            STRSXP => {
                let n = self.length()?;
                // Each string takes at least 8 bytes: a bad length cannot allocate much.
                if (n as usize) > self.data.len() / 8 {
                    return Err(GiveUp);
                }
                let v = p.protect(Rf_allocVector(SEXPTYPE::STRSXP, n));
                for i in 0..n {
                    let cflags = self.int()?;
                    if cflags & 0xff != CHARSXP || cflags & HAS_ATTR_BIT != 0 {
                        return Err(GiveUp);
                    }
                    SET_STRING_ELT(v, i, self.charsxp(cflags >> 12)?);
                }
                v
            }
            VECSXP | EXPRSXP => {
                let n = self.length()?;
                if (n as usize) > self.data.len() / 4 {
                    return Err(GiveUp);
                }
                let t = if ty == VECSXP {
                    SEXPTYPE::VECSXP
                } else {
                    SEXPTYPE::EXPRSXP
                };
                let v = p.protect(Rf_allocVector(t, n));
                for i in 0..n {
                    SET_VECTOR_ELT(v, i, self.item(depth + 1)?);
                }
                v
            }
            _ => return Err(GiveUp),
        };
        if hasattr {
            SET_ATTRIB(s, self.item(depth + 1)?);
        }
        SETLEVELS(s, levs);
        SET_OBJECT(s, i32::from(objf));
        Ok(s)
    }

    /// A pairlist or call: cells in order, each with its attributes, tag and CAR; the CDR
    /// chain is followed iteratively.
    unsafe fn pairlist(&mut self, first: i32, depth: u32) -> Result<SEXP, GiveUp> {
        let mut p = Protector::new();
        let mut head = R_NilValue;
        let mut tail = R_NilValue;
        let mut flags = first;
        loop {
            let ty = flags & 0xff;
            let cell = if ty == LANGSXP {
                Rf_lcons(R_NilValue, R_NilValue)
            } else {
                Rf_cons(R_NilValue, R_NilValue)
            };
            if head == R_NilValue {
                head = p.protect(cell);
            } else {
                SETCDR(tail, cell);
            }
            tail = cell;
            SETLEVELS(cell, flags >> 12);
            SET_OBJECT(cell, i32::from(flags & IS_OBJECT_BIT != 0));
            if flags & HAS_ATTR_BIT != 0 {
                SET_ATTRIB(cell, self.item(depth + 1)?);
            }
            if flags & HAS_TAG_BIT != 0 {
                SET_TAG(cell, self.item(depth + 1)?);
            }
            SETCAR(cell, self.item(depth + 1)?);
            // The CDR: another cell of a pairlist or call, or any other item.
            let save = self.pos;
            let next = self.int()?;
            match next & 0xff {
                LISTSXP | LANGSXP => flags = next,
                _ => {
                    self.pos = save;
                    SETCDR(tail, self.item(depth + 1)?);
                    return Ok(head);
                }
            }
        }
    }
}

/// Reads a whole serialization with the fast path: `Some(object)` (unprotected) if it covers
/// every item and the bytes end exactly there, else `None` (nothing was changed; R's reader
/// should be used). R allocation errors are confined by `protect` and also give `None`.
///
/// # Safety
/// Main thread.
pub(crate) unsafe fn read(data: &[u8]) -> Option<SEXP> {
    let start = with_header(|h| data.starts_with(h).then_some(h.len()))??;
    let mut out: Option<SEXP> = None;
    let r = protect(|| {
        let mut rd = Reader {
            data,
            pos: start,
            syms: Vec::new(),
        };
        if let Ok(v) = rd.item(0) {
            if rd.pos == data.len() {
                out = Some(v);
            }
        }
        R_NilValue
    });
    match r {
        Ok(_) => out,
        Err(_) => None,
    }
}
