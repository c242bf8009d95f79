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

use std::cell::RefCell;
use std::collections::HashMap;

use mirai_rapi::{Encoding, Kind, Scope, Sexp, Special, R};

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

/// The marker R writes for each special object.
fn special_code(which: Special) -> i32 {
    match which {
        Special::Null => NILVALUE_SXP,
        Special::EmptyEnv => EMPTYENV_SXP,
        Special::BaseEnv => BASEENV_SXP,
        Special::GlobalEnv => GLOBALENV_SXP,
        Special::UnboundValue => UNBOUNDVALUE_SXP,
        Special::MissingArg => MISSINGARG_SXP,
        Special::BaseNamespace => BASENAMESPACE_SXP,
        _ => -1,
    }
}

thread_local! {
    /// The header R writes before the first item (format, versions, native encoding).
    static HEADER: RefCell<Option<Vec<u8>>> = const { RefCell::new(None) };
}

/// Calls `f` with the serialization header of this R session, learnt once from R itself
/// (`serialize(NULL)` minus its one item); `None` if it could not be learnt.
fn with_header<T>(f: impl FnOnce(&[u8]) -> T) -> Option<T> {
    let known = HEADER.with(|h| h.borrow().is_some());
    if !known {
        let mut full = Vec::new();
        mirai_rapi::serialize(Sexp::null(), &mut full, None).ok()?;
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
    /// Symbols written so far (their addresses), in order (reference index = position + 1);
    /// searched linearly while short, through `index` once long.
    syms: Vec<usize>,
    index: HashMap<usize, i32>,
}

impl Writer {
    fn int(&mut self, i: i32) {
        self.buf.extend_from_slice(&i.to_ne_bytes());
    }

    /// The reference index of a symbol already written.
    fn sym_index(&self, s: usize) -> Option<i32> {
        if self.index.is_empty() {
            self.syms.iter().position(|&x| x == s).map(|k| k as i32 + 1)
        } else {
            self.index.get(&s).copied()
        }
    }

    fn bytes(&mut self, b: &[u8]) {
        self.buf.extend_from_slice(b);
    }

    fn length(&mut self, n: usize) {
        if n > i32::MAX as usize {
            self.int(-1);
            self.int((n >> 32) as i32);
            self.int((n & 0xffff_ffff) as i32);
        } else {
            self.int(n as i32);
        }
    }

    /// An atomic vector's length and data.
    fn data(&mut self, s: Sexp<'_>) -> Result<(), Unsupported> {
        let d = s.data_bytes().ok_or(Unsupported)?;
        self.length(s.len());
        self.bytes(d);
        Ok(())
    }

    fn charsxp(&mut self, c: Sexp<'_>) {
        let levs = c.levels() & !(CACHED_MASK | HASHASH_MASK);
        self.int(CHARSXP | (levs << 12));
        if c.is_na_string() {
            self.int(-1);
        } else {
            let b = c.char_bytes().unwrap_or(&[]);
            self.int(b.len() as i32);
            self.bytes(b);
        }
    }

    fn symbol(&mut self, s: Sexp<'_>) -> Result<(), Unsupported> {
        if let Some(i) = self.sym_index(s.addr()) {
            self.int((i << 8) | REFSXP);
            return Ok(());
        }
        let i = self.syms.len() as i32 + 1;
        if i > (i32::MAX >> 8) {
            return Err(Unsupported);
        }
        self.syms.push(s.addr());
        if !self.index.is_empty() || self.syms.len() > 16 {
            if self.index.is_empty() {
                self.index = self
                    .syms
                    .iter()
                    .enumerate()
                    .map(|(k, &x)| (x, k as i32 + 1))
                    .collect();
            } else {
                self.index.insert(s.addr(), i);
            }
        }
        self.int(SYMSXP);
        self.charsxp(s.printname().ok_or(Unsupported)?);
        Ok(())
    }

    fn item(&mut self, mut s: Sexp<'_>, depth: u32) -> Result<(), Unsupported> {
        if depth > MAX_DEPTH {
            return Err(Unsupported);
        }
        loop {
            if let Some(which) = s.special() {
                self.int(special_code(which));
                return Ok(());
            }
            let h = s.header();
            if h.is_altrep {
                return Err(Unsupported);
            }
            let ty = h.kind as i32;
            if ty == SYMSXP {
                return self.symbol(s);
            }
            let cell = match ty {
                LISTSXP | LANGSXP => Some(s.cell().ok_or(Unsupported)?),
                LGLSXP | INTSXP | REALSXP | CPLXSXP | STRSXP | VECSXP | EXPRSXP | RAWSXP => None,
                CHARSXP => {
                    self.charsxp(s);
                    return Ok(());
                }
                _ => return Err(Unsupported),
            };
            let hasattr = !h.attrib.is_null();
            let hastag = cell.is_some_and(|(tag, _, _)| !tag.is_null());
            let mut flags = ty | (h.levels << 12);
            if h.is_object {
                flags |= IS_OBJECT_BIT;
            }
            if hasattr {
                flags |= HAS_ATTR_BIT;
            }
            if hastag {
                flags |= HAS_TAG_BIT;
            }
            self.int(flags);
            if let Some((tag, car, cdr)) = cell {
                // ATTRIB, TAG, CAR, then the CDR as the next item (iteratively).
                if hasattr {
                    self.item(h.attrib, depth + 1)?;
                }
                if hastag {
                    self.item(tag, depth + 1)?;
                }
                self.item(car, depth + 1)?;
                s = cdr;
                continue;
            }
            match ty {
                STRSXP => {
                    self.length(s.len());
                    for c in s.str_elts() {
                        if c.kind() != Kind::CHARSXP {
                            return Err(Unsupported);
                        }
                        self.charsxp(c);
                    }
                }
                VECSXP | EXPRSXP => {
                    self.length(s.len());
                    for e in s.list_elts() {
                        self.item(e, depth + 1)?;
                    }
                }
                _ => self.data(s)?,
            }
            if hasattr {
                self.item(h.attrib, depth + 1)?;
            }
            return Ok(());
        }
    }
}

/// Appends the serialization of `x` to `buf` if the fast path covers it (true), else leaves
/// `buf` as it was (false). Calls no R code, except R_Serialize once per session to learn the
/// header.
pub(crate) fn write(x: Sexp<'_>, buf: &mut Vec<u8>) -> bool {
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

struct Reader<'d> {
    data: &'d [u8],
    pos: usize,
    r: R,
    /// Symbols read so far (reference index - 1). Symbols are never collected.
    syms: Vec<Sexp<'static>>,
}

impl<'d> Reader<'d> {
    fn int(&mut self) -> Result<i32, GiveUp> {
        let b = self.take(4)?;
        Ok(i32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn take(&mut self, n: usize) -> Result<&'d [u8], GiveUp> {
        let data = self.data;
        let end = self.pos.checked_add(n).ok_or(GiveUp)?;
        let b = data.get(self.pos..end).ok_or(GiveUp)?;
        self.pos = end;
        Ok(b)
    }

    fn length(&mut self) -> Result<usize, GiveUp> {
        let n = self.int()?;
        if n >= 0 {
            return Ok(n as usize);
        }
        if n != -1 {
            return Err(GiveUp);
        }
        let hi = self.int()? as u32 as u64;
        let lo = self.int()? as u32 as u64;
        usize::try_from((hi << 32) + lo).map_err(|_| GiveUp)
    }

    /// A vector's data: checks the bytes are there before R allocates anything.
    fn vector<'s>(
        &mut self,
        s: &'s Scope<'_>,
        kind: Kind,
        size: usize,
    ) -> Result<Sexp<'s>, GiveUp> {
        let n = self.length()?;
        let bytes = self.take(n.checked_mul(size).ok_or(GiveUp)?)?;
        s.vector_from_bytes(kind, n, bytes).ok_or(GiveUp)
    }

    /// A string's bytes and encoding, `None` for `NA`.
    fn string(&mut self, levs: i32) -> Result<Option<(&'d [u8], Encoding)>, GiveUp> {
        let n = self.int()?;
        if n == -1 {
            return Ok(None);
        }
        let n = usize::try_from(n).map_err(|_| GiveUp)?;
        let bytes = self.take(n)?;
        let enc = if levs & UTF8_MASK != 0 {
            Encoding::Utf8
        } else if levs & LATIN1_MASK != 0 {
            Encoding::Latin1
        } else if levs & BYTES_MASK != 0 {
            Encoding::Bytes
        } else {
            Encoding::Native
        };
        Ok(Some((bytes, enc)))
    }

    fn charsxp<'s>(&mut self, s: &'s Scope<'_>, levs: i32) -> Result<Sexp<'s>, GiveUp> {
        match self.string(levs)? {
            None => Ok(self.r.na_string()),
            Some((bytes, enc)) => s.char_from_bytes(bytes, enc).ok_or(GiveUp),
        }
    }

    /// Reads one item, protected by `s`.
    fn item<'s>(&mut self, s: &'s Scope<'_>, depth: u32) -> Result<Sexp<'s>, GiveUp> {
        if depth > MAX_DEPTH {
            return Err(GiveUp);
        }
        let flags = self.int()?;
        let ty = flags & 0xff;
        let levs = flags >> 12;
        let objf = flags & IS_OBJECT_BIT != 0;
        let hasattr = flags & HAS_ATTR_BIT != 0;
        let hastag = flags & HAS_TAG_BIT != 0;
        let special = |w| Ok(self.r.special(w));
        match ty {
            NILVALUE_SXP => return special(Special::Null),
            EMPTYENV_SXP => return special(Special::EmptyEnv),
            BASEENV_SXP => return special(Special::BaseEnv),
            GLOBALENV_SXP => return special(Special::GlobalEnv),
            UNBOUNDVALUE_SXP => return special(Special::UnboundValue),
            MISSINGARG_SXP => return special(Special::MissingArg),
            BASENAMESPACE_SXP => return special(Special::BaseNamespace),
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
                let q = s.child();
                let c = self.charsxp(&q, cflags >> 12)?;
                let sym = self.r.install_char(c).ok_or(GiveUp)?;
                drop(q);
                self.syms.push(sym);
                return Ok(sym);
            }
            LISTSXP | LANGSXP => return self.pairlist(s, flags, depth),
            CHARSXP => {
                let c = self.charsxp(s, levs)?;
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
        let v = match ty {
            LGLSXP => self.vector(s, Kind::LGLSXP, 4)?,
            INTSXP => self.vector(s, Kind::INTSXP, 4)?,
            REALSXP => self.vector(s, Kind::REALSXP, 8)?,
            CPLXSXP => self.vector(s, Kind::CPLXSXP, 16)?,
            RAWSXP => self.vector(s, Kind::RAWSXP, 1)?,
            STRSXP => {
                let n = self.length()?;
                // Each string takes at least 8 bytes: a bad length cannot allocate much.
                if n > self.data.len() / 8 {
                    return Err(GiveUp);
                }
                let v = s.vector(Kind::STRSXP, n).ok_or(GiveUp)?;
                for i in 0..n {
                    let cflags = self.int()?;
                    if cflags & 0xff != CHARSXP || cflags & HAS_ATTR_BIT != 0 {
                        return Err(GiveUp);
                    }
                    match self.string(cflags >> 12)? {
                        None => v.set_str_elt(i, self.r.na_string()),
                        Some((bytes, enc)) => {
                            if !v.set_str_elt_bytes(i, bytes, enc) {
                                return Err(GiveUp);
                            }
                        }
                    }
                }
                v
            }
            VECSXP | EXPRSXP => {
                let n = self.length()?;
                if n > self.data.len() / 4 {
                    return Err(GiveUp);
                }
                let kind = if ty == VECSXP {
                    Kind::VECSXP
                } else {
                    Kind::EXPRSXP
                };
                let v = s.vector(kind, n).ok_or(GiveUp)?;
                for i in 0..n {
                    let q = s.child();
                    let e = self.item(&q, depth + 1)?;
                    v.set_list_elt(i, e);
                }
                v
            }
            _ => return Err(GiveUp),
        };
        if hasattr {
            self.attrib(s, v, depth)?;
        }
        v.set_header_bits(levs, objf);
        Ok(v)
    }

    /// Reads the attributes of `v` (a pairlist) and sets them.
    fn attrib(&mut self, s: &Scope<'_>, v: Sexp<'_>, depth: u32) -> Result<(), GiveUp> {
        let q = s.child();
        let a = self.item(&q, depth + 1)?;
        if v.set_attrib(a) {
            Ok(())
        } else {
            Err(GiveUp)
        }
    }

    /// A pairlist or call: cells in order, each with its attributes, tag and CAR; the CDR
    /// chain is followed iteratively.
    fn pairlist<'s>(
        &mut self,
        s: &'s Scope<'_>,
        first: i32,
        depth: u32,
    ) -> Result<Sexp<'s>, GiveUp> {
        let head = s.cell(first & 0xff == LANGSXP);
        let mut cell = head;
        let mut flags = first;
        loop {
            cell.set_header_bits(flags >> 12, flags & IS_OBJECT_BIT != 0);
            if flags & HAS_ATTR_BIT != 0 {
                self.attrib(s, cell, depth)?;
            }
            if flags & HAS_TAG_BIT != 0 {
                let q = s.child();
                if !cell.set_tag(self.item(&q, depth + 1)?) {
                    return Err(GiveUp);
                }
            }
            {
                let q = s.child();
                cell.set_car(self.item(&q, depth + 1)?);
            }
            // The CDR: another cell of a pairlist or call, or any other item.
            let save = self.pos;
            let next = self.int()?;
            match next & 0xff {
                LISTSXP | LANGSXP => {
                    flags = next;
                    cell = cell.push_cell(next & 0xff == LANGSXP).ok_or(GiveUp)?;
                }
                _ => {
                    self.pos = save;
                    // A dotted end (anything but `NULL`) is left to R's reader.
                    let q = s.child();
                    if !cell.set_cdr(self.item(&q, depth + 1)?) {
                        return Err(GiveUp);
                    }
                    return Ok(head);
                }
            }
        }
    }
}

/// Reads a whole serialization with the fast path: `Some(object)` (protected by `s`) if it
/// covers every item and the bytes end exactly there, else `None` (R's reader should be used).
pub(crate) fn read<'s>(s: &'s Scope<'_>, data: &[u8]) -> Option<Sexp<'s>> {
    let r = s.r();
    let start = with_header(|h| data.starts_with(h).then_some(h.len()))??;
    let mut rd = Reader {
        data,
        pos: start,
        r,
        syms: Vec::new(),
    };
    let v = rd.item(s, 0).ok()?;
    (rd.pos == data.len()).then_some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn special_markers_are_rs_and_distinct() {
        let codes: Vec<i32> = Special::ALL.iter().map(|&w| special_code(w)).collect();
        assert_eq!(codes, [254, 242, 241, 253, 252, 251, 247]);
    }
}
