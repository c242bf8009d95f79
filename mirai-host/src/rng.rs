//! L'Ecuyer-CMRG (MRG32k3a) random-number streams, bit-identical to R's
//! `parallel::nextRNGStream()`.
//!
//! A stream is R's 7-integer `.Random.seed` under `RNGkind("L'Ecuyer-CMRG")`: the kind code
//! (10407 for the default normal and sample kinds) followed by the generator's six state words,
//! which R keeps as *unsigned* 32-bit values in signed `int`s. [`next_stream`] jumps the state
//! ahead by 2^127 steps, exactly as `nextRNGStream` does, so that the streams handed to daemons
//! (or to tasks) never overlap; the kind code is kept as it is.
//!
//! ```
//! use mirai_host::rng::{advance, next_stream};
//! // RNGkind("L'Ecuyer-CMRG"); set.seed(42); .Random.seed
//! let s0 = [10407, -2133391687, 507561766, 1260545903, 1362917092, -1772566379, -1344458670];
//! assert_eq!(next_stream(s0), [10407, -94575036, -24861725, 357812871, 346211554, -1301022835, 440649733]);
//! assert_eq!(advance(s0, 2), next_stream(next_stream(s0)));
//! ```

use mirai_proto::RngStream;

/// Modulus of the first MRG32k3a component.
const M1: u64 = 4_294_967_087;
/// Modulus of the second MRG32k3a component.
const M2: u64 = 4_294_944_443;

/// The first component's transition matrix raised to 2^127 (L'Ecuyer, Simard, Chen & Kelton
/// 2002, `A1p127`).
const A1P127: Mat = [
    [2_427_906_178, 3_580_155_704, 949_770_784],
    [226_153_695, 1_230_515_664, 3_580_155_704],
    [1_988_835_001, 986_791_581, 1_230_515_664],
];

/// The second component's transition matrix raised to 2^127 (`A2p127`).
const A2P127: Mat = [
    [1_464_411_153, 277_697_599, 1_610_723_613],
    [32_183_930, 1_464_411_153, 1_022_607_788],
    [2_824_425_944, 32_183_930, 2_093_834_863],
];

/// The kind code R stores first in a default L'Ecuyer-CMRG `.Random.seed`
/// (L'Ecuyer-CMRG uniform, Inversion normal, Rejection sample).
pub const KIND_LECUYER: i32 = 10407;

type Mat = [[u64; 3]; 3];

/// `a * b mod m` for `a, b < m < 2^32`: the product fits in 64 bits.
fn mul_mod(a: u64, b: u64, m: u64) -> u64 {
    (a * b) % m
}

fn mat_vec(a: &Mat, v: [u64; 3], m: u64) -> [u64; 3] {
    let mut out = [0u64; 3];
    for (i, row) in a.iter().enumerate() {
        // Each term is reduced before summing, so the sum stays below 3m < 2^34.
        out[i] = row
            .iter()
            .zip(v)
            .map(|(&x, y)| mul_mod(x, y, m))
            .sum::<u64>()
            % m;
    }
    out
}

fn mat_mul(a: &Mat, b: &Mat, m: u64) -> Mat {
    let mut out = [[0u64; 3]; 3];
    for i in 0..3 {
        for j in 0..3 {
            out[i][j] = (0..3).map(|k| mul_mod(a[i][k], b[k][j], m)).sum::<u64>() % m;
        }
    }
    out
}

fn mat_pow(a: &Mat, mut k: u64, m: u64) -> Mat {
    let mut result: Mat = [[1, 0, 0], [0, 1, 0], [0, 0, 1]];
    let mut base = *a;
    while k > 0 {
        if k & 1 == 1 {
            result = mat_mul(&result, &base, m);
        }
        base = mat_mul(&base, &base, m);
        k >>= 1;
    }
    result
}

/// R keeps each state word as an unsigned 32-bit value in a signed int; reducing modulo the
/// component's modulus keeps the arithmetic total for any input (R's own seeds are in range).
fn words(s: &RngStream) -> ([u64; 3], [u64; 3]) {
    let w = |i: usize| u64::from(s[i] as u32);
    (
        [w(1) % M1, w(2) % M1, w(3) % M1],
        [w(4) % M2, w(5) % M2, w(6) % M2],
    )
}

fn apply(s: RngStream, a1: &Mat, a2: &Mat) -> RngStream {
    let (x, y) = words(&s);
    let x = mat_vec(a1, x, M1);
    let y = mat_vec(a2, y, M2);
    // Values are below 2^32; R stores them as the int with the same bits.
    [
        s[0],
        x[0] as u32 as i32,
        x[1] as u32 as i32,
        x[2] as u32 as i32,
        y[0] as u32 as i32,
        y[1] as u32 as i32,
        y[2] as u32 as i32,
    ]
}

/// The next stream: R's `parallel::nextRNGStream(s)` (a jump of 2^127 steps). The kind code
/// `s[0]` is kept as is.
pub fn next_stream(s: RngStream) -> RngStream {
    apply(s, &A1P127, &A2P127)
}

/// `nextRNGStream` applied `k` times (`k = 0` returns `s` unchanged). Costs O(log k).
pub fn advance(s: RngStream, k: u64) -> RngStream {
    if k == 0 {
        return s;
    }
    apply(s, &mat_pow(&A1P127, k, M1), &mat_pow(&A2P127, k, M2))
}

/// True if `s` looks like an L'Ecuyer-CMRG `.Random.seed`: R's own check in `nextRNGStream`
/// (the kind code modulo 100 is 7).
pub fn is_lecuyer(s: &RngStream) -> bool {
    s[0].rem_euclid(100) == 7
}

/// The `.Random.seed` that `RNGkind("L'Ecuyer-CMRG"); set.seed(seed)` produces in R (default
/// normal and sample kinds), so the host can derive a profile's base stream from a user seed
/// without calling R.
pub fn seed_stream(seed: i32) -> RngStream {
    // R's set.seed: scramble the seed with 50 rounds of the LCG 69069 x + 1 (mod 2^32), then
    // draw one LCG value per state word, redrawing while it is not below the smaller modulus.
    let lcg = |x: u32| x.wrapping_mul(69069).wrapping_add(1);
    let mut x = seed as u32;
    for _ in 0..50 {
        x = lcg(x);
    }
    let mut out = [KIND_LECUYER, 0, 0, 0, 0, 0, 0];
    for slot in out.iter_mut().skip(1) {
        x = lcg(x);
        while u64::from(x) >= M2 {
            x = lcg(x);
        }
        *slot = x as i32;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const S42: RngStream = [
        10407,
        -2133391687,
        507561766,
        1260545903,
        1362917092,
        -1772566379,
        -1344458670,
    ];
    const S42_1: RngStream = [
        10407,
        -94575036,
        -24861725,
        357812871,
        346211554,
        -1301022835,
        440649733,
    ];
    const S42_2: RngStream = [
        10407,
        -358246211,
        -1411857254,
        -488221791,
        1069515918,
        -1720689715,
        1070199760,
    ];

    #[test]
    fn matches_r_reference_values() {
        assert_eq!(next_stream(S42), S42_1);
        assert_eq!(next_stream(S42_1), S42_2);
        assert_eq!(advance(S42, 1), S42_1);
        assert_eq!(advance(S42, 2), S42_2);
        assert_eq!(advance(S42, 0), S42);
    }

    #[test]
    fn set_seed_42_matches_r() {
        assert_eq!(seed_stream(42), S42);
    }

    #[test]
    fn advance_equals_repeated_next_stream() {
        for start in [S42, seed_stream(1), seed_stream(-7), seed_stream(123456)] {
            let mut s = start;
            for k in 1..=40u64 {
                s = next_stream(s);
                assert_eq!(advance(start, k), s, "k = {k}");
            }
        }
    }

    #[test]
    fn kind_code_is_kept_and_checked() {
        let mut s = S42;
        s[0] = 407; // another normal kind, still L'Ecuyer uniform
        assert_eq!(next_stream(s)[0], 407);
        assert!(is_lecuyer(&s));
        assert!(!is_lecuyer(&[10403, 0, 0, 0, 0, 0, 0]));
    }

    #[test]
    fn out_of_range_words_do_not_panic() {
        let s = [10407, -1, -1, -1, -1, -1, -1];
        let _ = next_stream(s);
        let _ = advance(s, u64::MAX);
    }

    /// Compares with R itself when `Rscript` is installed: 20 successive streams from several
    /// seeds, and `set.seed` under L'Ecuyer-CMRG.
    #[test]
    fn matches_rscript_when_available() {
        let seeds = [42, 1, -7, 123456, 2147483647, -2147483647, 0];
        let script = format!(
            "RNGkind(\"L'Ecuyer-CMRG\"); for (sd in c({})) {{ set.seed(sd); s <- .Random.seed; \
             cat(s, '\\n'); for (i in 1:20) {{ s <- parallel::nextRNGStream(s); cat(s, '\\n') }} }}",
            seeds.iter().map(|s| format!("{s}L")).collect::<Vec<_>>().join(",")
        );
        let out = match std::process::Command::new("Rscript")
            .arg("-e")
            .arg(&script)
            .output()
        {
            Ok(o) if o.status.success() => o,
            Ok(o) => panic!("Rscript failed: {}", String::from_utf8_lossy(&o.stderr)),
            Err(e) => {
                println!("note: Rscript not available ({e}); skipping the comparison with R");
                return;
            }
        };
        let text = String::from_utf8(out.stdout).expect("R prints ASCII");
        let rows: Vec<RngStream> = text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                let v: Vec<i32> = l
                    .split_whitespace()
                    .map(|x| x.parse().expect("an integer"))
                    .collect();
                v.try_into().expect("7 integers per stream")
            })
            .collect();
        assert_eq!(rows.len(), seeds.len() * 21);
        for (i, seed) in seeds.iter().enumerate() {
            let block = &rows[i * 21..(i + 1) * 21];
            assert_eq!(seed_stream(*seed), block[0], "set.seed({seed})");
            let mut s = block[0];
            for (k, want) in block.iter().enumerate().skip(1) {
                s = next_stream(s);
                assert_eq!(s, *want, "seed {seed}, stream {k}");
                assert_eq!(
                    advance(block[0], k as u64),
                    *want,
                    "seed {seed}, advance {k}"
                );
            }
        }
    }
}
