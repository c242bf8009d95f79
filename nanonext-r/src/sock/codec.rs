//! Message bodies from and to R values (spec §5.4): the raw-mode encoding of atomic vectors,
//! the serial-mode header, and the decoding table of `recv()` modes.

use mirai_rapi::{Kind, RError, RResult, Scope, Sexp};

const NOT_ATOMIC: &str = "`data` must be an atomic vector type or NULL to send in mode 'raw'";

/// The raw-mode bytes of `data`, in native byte order: strings each followed by a NUL.
pub(crate) fn encode_raw(data: Sexp<'_>) -> RResult<Vec<u8>> {
    fn words<T: Copy, const N: usize>(v: &[T], f: impl Fn(T) -> [u8; N]) -> Vec<u8> {
        let mut out = body_buf(v.len() * N);
        for &x in v {
            out.extend_from_slice(&f(x));
        }
        out
    }
    Ok(match data.kind() {
        Kind::NILSXP => Vec::new(),
        Kind::RAWSXP => {
            let b = data.bytes().unwrap_or(&[]);
            let mut out = body_buf(b.len());
            out.extend_from_slice(b);
            out
        }
        Kind::INTSXP => words(data.ints().unwrap_or(&[]), i32::to_ne_bytes),
        Kind::LGLSXP => words(data.lgls().unwrap_or(&[]), i32::to_ne_bytes),
        Kind::REALSXP => words(data.reals().unwrap_or(&[]), f64::to_ne_bytes),
        Kind::CPLXSXP => words(data.cplx_parts().unwrap_or(&[]), f64::to_ne_bytes),
        Kind::STRSXP => {
            let mut out = Vec::new();
            for i in 0..data.len() {
                let c = data.str_elt(i).ok_or(NOT_ATOMIC)?;
                if c.is_na_string() {
                    out.extend_from_slice(b"NA");
                } else {
                    out.extend_from_slice(c.char_bytes().unwrap_or(&[]));
                }
                out.push(0);
            }
            out
        }
        _ => return Err(RError::from(NOT_ATOMIC)),
    })
}

/// An empty message body with room for `n` bytes and the protocol header the socket adds in
/// front, so that a large body is never reallocated on its way out.
fn body_buf(n: usize) -> Vec<u8> {
    Vec::with_capacity(n + mirai_sp::sm::HEADROOM)
}

/// The 8-byte serial header: `07 00 00 <mark>` then the context id (native int32).
pub(crate) fn header(mark: bool, ctx: i32) -> [u8; 8] {
    let mut h = [7, 0, 0, mark as u8, 0, 0, 0, 0];
    h[4..].copy_from_slice(&ctx.to_ne_bytes());
    h
}

/// A serial-mode body: the header (when marked, or always for requests) then `ser`.
pub(crate) fn serial_body(ser: &[u8], ctx: Option<i32>) -> Vec<u8> {
    let mark = crate::utils::marked();
    let mut out = body_buf(ser.len() + 8);
    if mark || ctx.is_some() {
        out.extend_from_slice(&header(mark, ctx.unwrap_or(0)));
    }
    out.extend_from_slice(ser);
    out
}

/// Receive modes by their codes (1 serial ... 9 string).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    Serial,
    Character,
    Complex,
    Double,
    Integer,
    Logical,
    Numeric,
    Raw,
    String,
}

impl Mode {
    /// The mode of code `m`: 2..9 as listed, anything else serial.
    pub(crate) fn of(m: i32) -> Mode {
        match m {
            2 => Mode::Character,
            3 => Mode::Complex,
            4 => Mode::Double,
            5 => Mode::Integer,
            6 => Mode::Logical,
            7 => Mode::Numeric,
            8 => Mode::Raw,
            9 => Mode::String,
            _ => Mode::Serial,
        }
    }
}

/// How a received body becomes an R value: at once, or through R for the two cases R must
/// handle (unserializing, and warning that the bytes did not fit the mode).
pub(crate) enum Decoded<'a> {
    /// The value.
    Value(Sexp<'a>),
    /// A serialized object (header removed): R unserializes it (class `nanoSerial`).
    Serial(Sexp<'a>),
    /// The raw bytes, which did not fit the mode (class `nanoMisfit`): R warns.
    Misfit(Sexp<'a>),
}

impl<'a> Decoded<'a> {
    /// The R value handed to the package's R code: marked classes for the two R cases.
    pub(crate) fn into_sexp(self, s: &'a Scope) -> Sexp<'a> {
        match self {
            Decoded::Value(v) => v,
            Decoded::Serial(v) => {
                v.set_class(s, &[c"nanoSerial"]);
                v
            }
            Decoded::Misfit(v) => {
                v.set_class(s, &[c"nanoMisfit"]);
                v
            }
        }
    }
}

fn chunks<const N: usize>(b: &[u8]) -> impl Iterator<Item = [u8; N]> + '_ {
    b.chunks_exact(N)
        .map(|c| <[u8; N]>::try_from(c).unwrap_or([0; N]))
}

/// Decodes `b` for `mode` per the spec's table.
pub(crate) fn decode<'a>(s: &'a Scope, b: &[u8], mode: Mode) -> Decoded<'a> {
    let misfit = || Decoded::Misfit(s.raw(b));
    match mode {
        Mode::Raw => Decoded::Value(s.raw(b)),
        Mode::Serial => {
            let body = match b.first() {
                Some(0x07) if b.len() > 12 => &b[8..],
                _ => b,
            };
            if b.len() > 12 && matches!(body.first(), Some(0x41 | 0x42 | 0x58)) {
                Decoded::Serial(s.raw(body))
            } else {
                misfit()
            }
        }
        Mode::Character => {
            let body = b.strip_suffix(&[0]).unwrap_or(b);
            if b.is_empty() {
                return Decoded::Value(s.strings(0));
            }
            let parts: Vec<&[u8]> = body.split(|&c| c == 0).collect();
            Decoded::Value(s.strings_bytes(&parts))
        }
        Mode::String => {
            let body = b.strip_suffix(&[0]).unwrap_or(b);
            if body.contains(&0) {
                return misfit();
            }
            Decoded::Value(s.strings_bytes(&[body]))
        }
        Mode::Double | Mode::Numeric if b.len() % 8 == 0 => {
            let v: Vec<f64> = chunks::<8>(b).map(f64::from_ne_bytes).collect();
            Decoded::Value(s.real_vec(&v))
        }
        Mode::Integer if b.len() % 4 == 0 => {
            let v: Vec<i32> = chunks::<4>(b).map(i32::from_ne_bytes).collect();
            Decoded::Value(s.int_vec(&v))
        }
        Mode::Logical if b.len() % 4 == 0 => {
            let v: Vec<i32> = chunks::<4>(b).map(i32::from_ne_bytes).collect();
            Decoded::Value(s.lgl_vec(&v))
        }
        Mode::Complex if b.len() % 16 == 0 => {
            let v: Vec<f64> = chunks::<8>(b).map(f64::from_ne_bytes).collect();
            Decoded::Value(s.cplx_vec(&v))
        }
        Mode::Double | Mode::Numeric | Mode::Integer | Mode::Logical | Mode::Complex => misfit(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_layout() {
        assert_eq!(header(true, 0), [7, 0, 0, 1, 0, 0, 0, 0]);
        let h = header(false, 258);
        assert_eq!(&h[..4], &[7, 0, 0, 0]);
        assert_eq!(i32::from_ne_bytes([h[4], h[5], h[6], h[7]]), 258);
    }

    #[test]
    fn modes_by_code() {
        assert_eq!(Mode::of(1), Mode::Serial);
        assert_eq!(Mode::of(8), Mode::Raw);
        assert_eq!(Mode::of(42), Mode::Serial);
    }
}
