//! [`ErrorCode`]: the NNG-style integer error codes that mirai reports (`errorValue`s, dial
//! failures, span statuses), with their texts: the one table of them in the engine.

use std::borrow::Cow;
use std::fmt;

/// An NNG-style error code, as mirai's R API reports it: an `errorValue` of 19 prints as
/// `19 | Connection reset`.
///
/// Every `i32` is a code: the named ones have the texts of NNG's `nng_strerror` (the
/// associated constants, 0-31 and 1000); the others are read as NNG does (see
/// [`ErrorCode::text`]).
///
/// ```
/// use mirai_proto::ErrorCode;
/// assert_eq!(ErrorCode::CONNECTION_RESET.code(), 19);
/// assert_eq!(ErrorCode::from_code(20).to_string(), "20 | Operation canceled");
/// assert_eq!(ErrorCode::from_code(32).to_string(), "32 | Unknown error #32");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(transparent)]
pub struct ErrorCode(i32);

/// Defines the named codes and their texts from one list.
macro_rules! codes {
    ($($name:ident = $code:literal, $text:literal;)*) => {
        impl ErrorCode {
            $(
                #[doc = concat!("`", stringify!($code), " | ", $text, "`.")]
                pub const $name: ErrorCode = ErrorCode($code);
            )*

            /// Every named code, in increasing order.
            pub const KNOWN: &'static [ErrorCode] = &[$(ErrorCode::$name),*];

            /// The text of a named code; `None` for the others.
            pub const fn known_text(self) -> Option<&'static str> {
                match self.0 {
                    $($code => Some($text),)*
                    _ => None,
                }
            }
        }
    };
}

codes! {
    OK = 0, "Hunky dory";
    INTERRUPTED = 1, "Interrupted";
    OUT_OF_MEMORY = 2, "Out of memory";
    INVALID_ARGUMENT = 3, "Invalid argument";
    BUSY = 4, "Resource busy";
    TIMED_OUT = 5, "Timed out";
    CONNECTION_REFUSED = 6, "Connection refused";
    OBJECT_CLOSED = 7, "Object closed";
    TRY_AGAIN = 8, "Try again";
    NOT_SUPPORTED = 9, "Not supported";
    ADDRESS_IN_USE = 10, "Address in use";
    INCORRECT_STATE = 11, "Incorrect state";
    NOT_FOUND = 12, "Entry not found";
    PROTOCOL_ERROR = 13, "Protocol error";
    UNREACHABLE = 14, "Destination unreachable";
    ADDRESS_INVALID = 15, "Address invalid";
    PERMISSION_DENIED = 16, "Permission denied";
    MESSAGE_TOO_LARGE = 17, "Message too large";
    CONNECTION_ABORTED = 18, "Connection aborted";
    CONNECTION_RESET = 19, "Connection reset";
    CANCELED = 20, "Operation canceled";
    OUT_OF_FILES = 21, "Out of files";
    OUT_OF_SPACE = 22, "Out of space";
    ALREADY_EXISTS = 23, "Resource already exists";
    READ_ONLY = 24, "Read only resource";
    WRITE_ONLY = 25, "Write only resource";
    CRYPTO = 26, "Cryptographic error";
    PEER_AUTH = 27, "Peer could not be authenticated";
    OPTION_REQUIRES_ARGUMENT = 28, "Option requires argument";
    AMBIGUOUS_OPTION = 29, "Ambiguous option";
    INCORRECT_TYPE = 30, "Incorrect type";
    CONNECTION_SHUTDOWN = 31, "Connection shutdown";
    INTERNAL = 1000, "Internal error detected";
}

/// Codes with this bit set carry a system `errno` in the other bits.
const SYSTEM_BIT: i32 = 0x1000_0000;
/// Codes with this bit set (and not [`SYSTEM_BIT`]) carry a transport's own error number.
const TRANSPORT_BIT: i32 = 0x2000_0000;
/// `nng_error()` formats into a 40-byte buffer: at most 39 bytes of text.
const MAX_DISPLAY: usize = 39;

impl ErrorCode {
    /// The code `code`, named or not.
    pub const fn from_code(code: i32) -> ErrorCode {
        ErrorCode(code)
    }

    /// The integer code.
    pub const fn code(self) -> i32 {
        self.0
    }

    /// True for the named codes (those with a [`ErrorCode::known_text`]).
    pub const fn is_known(self) -> bool {
        self.known_text().is_some()
    }

    /// The code's text, by NNG's rules: a named code's own text; with bit `0x10000000` set,
    /// the platform's `strerror()` of the code without that bit (`268435458` is `No such file
    /// or directory` on glibc); else with bit `0x20000000` set, `Transport error #<n>` of the
    /// code without that bit; else `Unknown error #<code>`.
    pub fn text(self) -> Cow<'static, str> {
        if let Some(t) = self.known_text() {
            return Cow::Borrowed(t);
        }
        let c = self.0;
        if c & SYSTEM_BIT != 0 {
            Cow::Owned(strerror(c & !SYSTEM_BIT))
        } else if c & TRANSPORT_BIT != 0 {
            Cow::Owned(format!("Transport error #{}", c & !TRANSPORT_BIT))
        } else {
            Cow::Owned(format!("Unknown error #{c}"))
        }
    }
}

/// The platform's text for `errno` (std's, without the ` (os error N)` it appends).
fn strerror(errno: i32) -> String {
    let s = std::io::Error::from_raw_os_error(errno).to_string();
    let tail = format!(" (os error {errno})");
    match s.strip_suffix(&tail) {
        Some(t) => t.to_string(),
        None => s,
    }
}

/// `"<code> | <text>"`, as mirai and nanonext print error values (`nng_error()`), cut to 39
/// bytes as they are.
impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = format!("{} | {}", self.0, self.text());
        let mut end = s.len().min(MAX_DISPLAY);
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        f.write_str(&s[..end])
    }
}

impl From<i32> for ErrorCode {
    fn from(code: i32) -> Self {
        ErrorCode(code)
    }
}

impl From<ErrorCode> for i32 {
    fn from(code: ErrorCode) -> Self {
        code.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The table of nanonext's `nng_error()` (spec `nanonext-api.md` §1.3), written out
    /// independently of the macro above.
    const SPEC: [(i32, &str); 33] = [
        (0, "Hunky dory"),
        (1, "Interrupted"),
        (2, "Out of memory"),
        (3, "Invalid argument"),
        (4, "Resource busy"),
        (5, "Timed out"),
        (6, "Connection refused"),
        (7, "Object closed"),
        (8, "Try again"),
        (9, "Not supported"),
        (10, "Address in use"),
        (11, "Incorrect state"),
        (12, "Entry not found"),
        (13, "Protocol error"),
        (14, "Destination unreachable"),
        (15, "Address invalid"),
        (16, "Permission denied"),
        (17, "Message too large"),
        (18, "Connection aborted"),
        (19, "Connection reset"),
        (20, "Operation canceled"),
        (21, "Out of files"),
        (22, "Out of space"),
        (23, "Resource already exists"),
        (24, "Read only resource"),
        (25, "Write only resource"),
        (26, "Cryptographic error"),
        (27, "Peer could not be authenticated"),
        (28, "Option requires argument"),
        (29, "Ambiguous option"),
        (30, "Incorrect type"),
        (31, "Connection shutdown"),
        (1000, "Internal error detected"),
    ];

    #[test]
    fn the_named_codes_are_the_spec_table() {
        assert_eq!(ErrorCode::KNOWN.len(), SPEC.len());
        for (known, (code, text)) in ErrorCode::KNOWN.iter().zip(SPEC) {
            assert_eq!(known.code(), code);
            assert_eq!(known.known_text(), Some(text));
            assert_eq!(ErrorCode::from_code(code).text(), text);
            assert_eq!(
                ErrorCode::from_code(code).to_string(),
                format!("{code} | {text}")
            );
            assert!(known.is_known());
        }
    }

    #[test]
    fn constants_name_the_codes_the_engine_uses() {
        assert_eq!(ErrorCode::TIMED_OUT.to_string(), "5 | Timed out");
        assert_eq!(ErrorCode::OBJECT_CLOSED.to_string(), "7 | Object closed");
        assert_eq!(ErrorCode::TRY_AGAIN.code(), 8);
        assert_eq!(
            ErrorCode::CONNECTION_RESET.to_string(),
            "19 | Connection reset"
        );
        assert_eq!(ErrorCode::CANCELED.to_string(), "20 | Operation canceled");
        assert_eq!(ErrorCode::CRYPTO.code(), 26);
        assert_eq!(ErrorCode::PEER_AUTH.code(), 27);
        assert_eq!(i32::from(ErrorCode::INTERNAL), 1000);
        assert_eq!(ErrorCode::from(19), ErrorCode::CONNECTION_RESET);
    }

    #[test]
    fn other_codes_follow_the_rules() {
        assert_eq!(
            ErrorCode::from_code(32).to_string(),
            "32 | Unknown error #32"
        );
        assert_eq!(ErrorCode::from_code(999).text(), "Unknown error #999");
        assert_eq!(ErrorCode::from_code(1001).text(), "Unknown error #1001");
        assert!(!ErrorCode::from_code(32).is_known());
        assert_eq!(
            ErrorCode::from_code(0x2000_0005).text(),
            "Transport error #5"
        );
        // glibc's texts, as in the spec's examples.
        assert_eq!(
            ErrorCode::from_code(268_435_458).to_string(),
            "268435458 | No such file or directory"
        );
        assert_eq!(
            ErrorCode::from_code(-1).to_string(),
            "-1 | Unknown error -268435457"
        );
        // Both bits: the system one wins (glibc has no errno 0x20000002).
        assert_eq!(
            ErrorCode::from_code(0x3000_0002).text(),
            "Unknown error 536870914"
        );
    }

    #[test]
    fn display_is_cut_to_39_bytes_like_nng_error() {
        // R's NA_integer_: the only code whose text overflows nanonext's buffer.
        assert_eq!(
            ErrorCode::from_code(i32::MIN).to_string(),
            "-2147483648 | Unknown error #-214748364"
        );
        for c in [i32::MIN, i32::MAX, -1, 0x1000_0000, 0x2FFF_FFFF, 12345] {
            assert!(ErrorCode::from_code(c).to_string().len() <= 39, "{c}");
        }
    }
}
