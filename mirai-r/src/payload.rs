//! The payload format of a serialization with hooks (see `crate::serial` for the whole
//! format): the hook blobs appended after R's serialization, with a trailer giving their
//! lengths, and the persistent names that refer to them.

/// First bytes of a payload that carries hook blobs.
pub(crate) const HOOKED_MAGIC: [u8; 4] = *b"MRH\x01";

/// Appends the blobs and the trailer describing them (the format is in `crate::serial`).
pub(crate) fn append_trailer(buf: &mut Vec<u8>, blobs: &[&[u8]]) {
    let extra: usize = blobs.iter().map(|b| b.len() + 8).sum::<usize>() + 8;
    buf.reserve(extra);
    for b in blobs {
        buf.extend_from_slice(b);
    }
    for b in blobs {
        buf.extend_from_slice(&(b.len() as u64).to_le_bytes());
    }
    buf.extend_from_slice(&(blobs.len() as u64).to_le_bytes());
}

/// A payload taken apart: the R serialization and the hook blobs.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Split<'a> {
    pub main: &'a [u8],
    pub blobs: Vec<&'a [u8]>,
}

fn read_u64(bytes: &[u8], at: usize) -> Option<u64> {
    let b: [u8; 8] = bytes.get(at..at.checked_add(8)?)?.try_into().ok()?;
    Some(u64::from_le_bytes(b))
}

/// Splits a payload into its R serialization and blobs; a payload without the hooked prefix
/// is all R serialization.
pub(crate) fn split_payload(buf: &[u8]) -> Result<Split<'_>, String> {
    let Some(rest) = buf.strip_prefix(&HOOKED_MAGIC) else {
        return Ok(Split {
            main: buf,
            blobs: Vec::new(),
        });
    };
    let bad = || "malformed mirai payload: its hook trailer is inconsistent".to_owned();
    let count_at = rest.len().checked_sub(8).ok_or_else(bad)?;
    let n = read_u64(rest, count_at).ok_or_else(bad)?;
    let n = usize::try_from(n).map_err(|_| bad())?;
    let lens_at = count_at
        .checked_sub(n.checked_mul(8).ok_or_else(bad)?)
        .ok_or_else(bad)?;
    let mut lens = Vec::with_capacity(n);
    let mut total: usize = 0;
    for k in 0..n {
        let len = read_u64(rest, lens_at + 8 * k).ok_or_else(bad)?;
        let len = usize::try_from(len).map_err(|_| bad())?;
        total = total.checked_add(len).ok_or_else(bad)?;
        lens.push(len);
    }
    let blobs_at = lens_at.checked_sub(total).ok_or_else(bad)?;
    let mut blobs = Vec::with_capacity(n);
    let mut at = blobs_at;
    for len in lens {
        blobs.push(&rest[at..at + len]);
        at += len;
    }
    Ok(Split {
        main: &rest[..blobs_at],
        blobs,
    })
}

/// Decimal digits of `n` into `buf`; returns the used part.
pub(crate) fn decimal(mut n: usize, buf: &mut [u8; 24]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    &buf[i..]
}

pub(crate) fn parse_decimal(s: &str) -> Option<usize> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_payload_is_all_main() {
        let p = b"B\n\x03\x00rest";
        assert_eq!(
            split_payload(p).unwrap(),
            Split {
                main: p,
                blobs: vec![]
            }
        );
        assert_eq!(split_payload(b"").unwrap().main, b"");
    }

    #[test]
    fn trailer_round_trips() {
        let mut buf = HOOKED_MAGIC.to_vec();
        buf.extend_from_slice(b"B\nserial");
        let blobs: [&[u8]; 3] = [b"abc", b"", b"\x00\x01MRH\x01"];
        append_trailer(&mut buf, &blobs);
        let s = split_payload(&buf).unwrap();
        assert_eq!(s.main, b"B\nserial");
        assert_eq!(s.blobs, blobs.to_vec());
    }

    #[test]
    fn trailer_with_no_blobs() {
        let mut buf = HOOKED_MAGIC.to_vec();
        buf.extend_from_slice(b"B\nx");
        append_trailer(&mut buf, &[]);
        let s = split_payload(&buf).unwrap();
        assert_eq!(s.main, b"B\nx");
        assert!(s.blobs.is_empty());
    }

    #[test]
    fn corrupt_trailers_are_errors_not_panics() {
        let mut cases: Vec<Vec<u8>> = vec![HOOKED_MAGIC.to_vec()];
        let mut huge_count = HOOKED_MAGIC.to_vec();
        huge_count.extend_from_slice(&u64::MAX.to_le_bytes());
        cases.push(huge_count);
        let mut huge_len = HOOKED_MAGIC.to_vec();
        huge_len.extend_from_slice(&(u64::MAX - 3).to_le_bytes());
        huge_len.extend_from_slice(&1u64.to_le_bytes());
        cases.push(huge_len);
        let mut two_huge = HOOKED_MAGIC.to_vec();
        two_huge.extend_from_slice(&(u64::MAX / 2 + 1).to_le_bytes());
        two_huge.extend_from_slice(&(u64::MAX / 2 + 1).to_le_bytes());
        two_huge.extend_from_slice(&2u64.to_le_bytes());
        cases.push(two_huge);
        for c in &cases {
            assert!(split_payload(c).is_err(), "{c:?}");
        }
        // Every truncation of a valid payload either fails or splits within bounds.
        let mut buf = HOOKED_MAGIC.to_vec();
        buf.extend_from_slice(b"B\nserial");
        append_trailer(&mut buf, &[b"blob-one", b"two"]);
        for cut in 0..buf.len() {
            let _ = split_payload(&buf[..cut]);
        }
    }

    #[test]
    fn decimal_formats_and_parses() {
        let mut b = [0u8; 24];
        assert_eq!(decimal(0, &mut b), b"0");
        assert_eq!(decimal(1234567, &mut b), b"1234567");
        assert_eq!(
            decimal(usize::MAX, &mut b),
            usize::MAX.to_string().as_bytes()
        );
        assert_eq!(parse_decimal("42"), Some(42));
        assert_eq!(parse_decimal(""), None);
        assert_eq!(parse_decimal("-1"), None);
        assert_eq!(parse_decimal("1x"), None);
    }
}
