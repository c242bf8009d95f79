//! The reference rows of the nanonext benchmark (`bench/nanonext-bench.R`): the `nng` crate's
//! own req/rep from Rust, between two processes over ipc, with the same sizes as the R rows
//! (16 B round trips; 1 MiB messages echoed).
//!
//! `mirai-bench nng-reqrep [--trips N] [--big M] [--csv FILE]` spawns `mirai-bench nng-rep
//! <url>` (an echoing rep socket), times N round trips of 16 B and M of 1 MiB one by one, and
//! prints (and appends to FILE) rows `measure,system,unit,median,min,max,n`. Throughput is
//! the message size over the round trip time (one way's bytes per second of echo).

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nng::options::{Options, RecvMaxSize, RecvTimeout, SendTimeout};

/// The system name of these rows.
const SYSTEM: &str = "nng crate req/rep (Rust), 2 processes";

fn socket(p: nng::Protocol) -> Result<nng::Socket, String> {
    let s = nng::Socket::new(p).map_err(|e| e.to_string())?;
    let t = Some(Duration::from_secs(30));
    s.set_opt::<RecvTimeout>(t).map_err(|e| e.to_string())?;
    s.set_opt::<SendTimeout>(t).map_err(|e| e.to_string())?;
    s.set_opt::<RecvMaxSize>(0).map_err(|e| e.to_string())?;
    Ok(s)
}

/// `nng-rep <url>`: listens at `url` and echoes every request until the peer goes away.
pub(crate) fn nng_rep(args: &[String]) -> Result<(), String> {
    let url = args.first().ok_or("usage: mirai-bench nng-rep <url>")?;
    let s = socket(nng::Protocol::Rep0)?;
    s.listen(url).map_err(|e| e.to_string())?;
    // Ready: the parent dials after this line.
    println!("ready");
    while let Ok(m) = s.recv() {
        if s.send(m).is_err() {
            break;
        }
    }
    Ok(())
}

fn stats(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    let med = if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    };
    (med, v[0], v[n - 1])
}

/// Times `n` round trips of `size` bytes; microseconds each.
fn trips(s: &nng::Socket, size: usize, n: usize) -> Result<Vec<f64>, String> {
    let body = vec![7u8; size];
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        s.send(nng::Message::from(&body[..]))
            .map_err(|(_, e)| e.to_string())?;
        let r = s.recv().map_err(|e| e.to_string())?;
        out.push(t.elapsed().as_secs_f64() * 1e6);
        if r.len() != size {
            return Err(format!("echo of {} bytes for {size}", r.len()));
        }
    }
    Ok(out)
}

/// `nng-reqrep`: see the module docs.
pub(crate) fn nng_reqrep(args: &[String]) -> Result<(), String> {
    let (mut n, mut big, mut csv) = (2000usize, 100usize, None);
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let v = it.next().ok_or_else(|| format!("{a} needs a value"))?;
        match a.as_str() {
            "--trips" => n = crate::num(v)?,
            "--big" => big = crate::num(v)?,
            "--csv" => csv = Some(v.clone()),
            other => return Err(format!("unknown argument '{other}'")),
        }
    }
    let path = std::env::temp_dir().join(format!("mirai-bench-nng-{}.sock", std::process::id()));
    let url = format!("ipc://{}", path.display());
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut child = Command::new(exe)
        .args(["nng-rep", &url])
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())?;
    let mut ready = String::new();
    if let Some(out) = child.stdout.take() {
        use std::io::BufRead;
        std::io::BufReader::new(out)
            .read_line(&mut ready)
            .map_err(|e| e.to_string())?;
    }
    let s = socket(nng::Protocol::Req0)?;
    s.dial(&url).map_err(|e| e.to_string())?;
    trips(&s, 16, 200)?;
    let small = trips(&s, 16, n.max(1))?;
    trips(&s, 1 << 20, 5)?;
    let large = trips(&s, 1 << 20, big.max(1))?;
    drop(s);
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_file(&path);
    let (m, lo, hi) = stats(small.clone());
    let mib = |us: f64| 1e6 / us;
    let (bm, blo, bhi) = stats(large.clone());
    let rows = [
        format!(
            "\"round trip 16 B, raw, ipc\",\"{SYSTEM}\",us,{m:.3},{lo:.3},{hi:.3},{}",
            small.len()
        ),
        format!(
            "\"1 MiB echoed, raw, ipc\",\"{SYSTEM}\",MiB/s,{:.1},{:.1},{:.1},{}",
            mib(bm),
            mib(bhi),
            mib(blo),
            large.len()
        ),
    ];
    for r in &rows {
        println!("{r}");
    }
    if let Some(f) = csv {
        use std::io::Write;
        let new = !std::path::Path::new(&f).exists();
        let mut out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&f)
            .map_err(|e| format!("{f}: {e}"))?;
        if new {
            writeln!(out, "measure,system,unit,median,min,max,n").map_err(|e| e.to_string())?;
        }
        for r in &rows {
            writeln!(out, "{r}").map_err(|e| e.to_string())?;
        }
    }
    Ok(())
}

/// `sp-reqrep [--trips N] [--big M]`: the same round trips between two `mirai_sp` sockets of
/// this process (rep echoing on a thread) over ipc: the driver's own cost, without R.
pub(crate) fn sp_reqrep(args: &[String]) -> Result<(), String> {
    use mirai_sp::{Protocol, Socket};
    let (mut n, mut big) = (2000usize, 100usize);
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let v = it.next().ok_or_else(|| format!("{a} needs a value"))?;
        match a.as_str() {
            "--trips" => n = crate::num(v)?,
            "--big" => big = crate::num(v)?,
            other => return Err(format!("unknown argument '{other}'")),
        }
    }
    let e = |e: mirai_sp::Error| e.to_string();
    let path = std::env::temp_dir().join(format!("mirai-bench-sp-{}.sock", std::process::id()));
    let url = format!("ipc://{}", path.display());
    let rep = std::sync::Arc::new(Socket::new(Protocol::Rep0).map_err(e)?);
    rep.listen(&url).map_err(e)?;
    let req = Socket::new(Protocol::Req0).map_err(e)?;
    req.dial(&url).map_err(e)?;
    let echo = std::sync::Arc::clone(&rep);
    let t = std::thread::spawn(move || {
        while let Ok(m) = echo.recv(None) {
            if echo.send_vec(m, None).is_err() {
                break;
            }
        }
    });
    let run = |size: usize, k: usize| -> Result<Vec<f64>, String> {
        let body = vec![7u8; size];
        let mut out = Vec::with_capacity(k);
        for _ in 0..k {
            let t = Instant::now();
            req.send(&body, None).map_err(e)?;
            let r = req.recv(None).map_err(e)?;
            out.push(t.elapsed().as_secs_f64() * 1e6);
            if r.len() != size {
                return Err("short echo".into());
            }
        }
        Ok(out)
    };
    run(16, 200)?;
    let (m, lo, hi) = stats(run(16, n.max(1))?);
    run(1 << 20, 5)?;
    let (bm, _, _) = stats(run(1 << 20, big.max(1))?);
    println!("mirai-sp req/rep, 1 process, ipc: round trip 16 B median {m:.1} us ({lo:.1} - {hi:.1}); 1 MiB echoed {:.1} MiB/s (round trip {bm:.0} us)", 1e6 / bm);
    drop(req);
    // A rep's recv waits for a request, not for its peer: closing it ends the echo thread.
    let _closed = rep.close();
    let _ = t.join();
    let _ = std::fs::remove_file(&path);
    Ok(())
}
