//! `parse_url()` and `status_code()` (spec §4): URLs split into their seven parts, and HTTP
//! status codes with their reason phrases.

use mirai_rapi::{RError, RResult, Scope, Sexp};

use crate::codes::as_int;

/// The parts of a URL, as `parse_url()` names them.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Url {
    pub(crate) scheme: String,
    pub(crate) userinfo: String,
    pub(crate) hostname: String,
    pub(crate) port: String,
    pub(crate) path: String,
    pub(crate) query: String,
    pub(crate) fragment: String,
}

/// Splits `url` (spec §4's rules); `None` when it is not a URL.
pub(crate) fn parse(url: &str) -> Option<Url> {
    let (scheme, rest) = url.split_once("://")?;
    let mut chars = scheme.chars();
    if !chars.next()?.is_ascii_alphabetic()
        || !chars.all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
        || url.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return None;
    }
    let scheme = scheme.to_ascii_lowercase();
    let mut u = Url {
        scheme,
        ..Url::default()
    };
    if matches!(u.scheme.as_str(), "inproc" | "abstract" | "ipc" | "unix") {
        u.path = rest.to_owned();
        return Some(u);
    }
    let (rest, fragment) = rest.split_once('#').unwrap_or((rest, ""));
    let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let (userinfo, hostport) = authority.rsplit_once('@').unwrap_or(("", authority));
    let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
        let (h, after) = v6.split_once(']')?;
        match after {
            "" => (h, ""),
            p => (h, p.strip_prefix(':')?),
        }
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) if !h.contains(':') => (h, p),
            Some(_) => return None,
            None => (hostport, ""),
        }
    };
    if !port.bytes().all(|b| b.is_ascii_digit()) || port.len() > 5 {
        return None;
    }
    let default_port = match u.scheme.as_str() {
        "http" | "ws" => "80",
        "https" | "wss" => "443",
        _ => "",
    };
    u.userinfo = userinfo.to_owned();
    u.hostname = host.to_ascii_lowercase();
    u.port = if port.is_empty() { default_port } else { port }.to_owned();
    u.path = path.to_owned();
    u.query = query.to_owned();
    u.fragment = fragment.to_owned();
    Some(u)
}

/// `.Call(nano_parse_url, url)`: the named character(7), or the error `3 | Invalid argument`.
pub(crate) fn nano_parse_url<'a>(s: &'a Scope, url: Sexp<'a>) -> RResult<Sexp<'a>> {
    let invalid = || RError::from("3 | Invalid argument");
    let text = url
        .str_elt(0)
        .filter(|c| !c.is_na_string())
        .and_then(|c| c.char_text())
        .ok_or_else(invalid)?;
    let u = parse(&text).ok_or_else(invalid)?;
    let v = s.strings_from(&[
        Some(&u.scheme),
        Some(&u.userinfo),
        Some(&u.hostname),
        Some(&u.port),
        Some(&u.path),
        Some(&u.query),
        Some(&u.fragment),
    ]);
    let names = s.cstrings(&[
        c"scheme",
        c"userinfo",
        c"hostname",
        c"port",
        c"path",
        c"query",
        c"fragment",
    ]);
    v.set_attr(s.r().sym(c"names"), names);
    Ok(v)
}

/// The reason phrase of HTTP status `code`.
pub(crate) fn reason(code: i32) -> &'static str {
    match code {
        100 => "Continue",
        101 => "Switching Protocols",
        102 => "Processing",
        103 => "Early Hints",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        203 => "Non-Authoritative Information",
        204 => "No Content",
        205 => "Reset Content",
        206 => "Partial Content",
        207 => "Multi-Status",
        208 => "Already Reported",
        226 => "IM Used",
        300 => "Multiple Choices",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        305 => "Use Proxy",
        306 => "Switch Proxy",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        402 => "Payment Required",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        411 => "Length Required",
        412 => "Precondition Failed",
        413 => "Payload Too Large",
        414 => "URI Too Long",
        415 => "Unsupported Media Type",
        416 => "Range Not Satisfiable",
        417 => "Expectation Failed",
        418 => "I'm a teapot",
        421 => "Misdirected Request",
        422 => "Unprocessable Entity",
        423 => "Locked",
        424 => "Failed Dependency",
        425 => "Too Early",
        426 => "Upgrade Required",
        428 => "Precondition Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        451 => "Unavailable For Legal Reasons",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        506 => "Variant Also Negotiates",
        507 => "Insufficient Storage",
        508 => "Loop Detected",
        510 => "Not Extended",
        511 => "Network Authentication Required",
        _ => "Unknown HTTP Status",
    }
}

/// `.Call(nano_status_code, x)`: `"<code> | <reason>"` for `x` coerced to integer.
pub(crate) fn nano_status_code<'a>(s: &'a Scope, x: Sexp<'a>) -> RResult<Sexp<'a>> {
    let code = as_int(x);
    Ok(s.string(&format!("{code} | {}", reason(code))))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(url: &str) -> [String; 7] {
        let u = parse(url).unwrap();
        [
            u.scheme, u.userinfo, u.hostname, u.port, u.path, u.query, u.fragment,
        ]
    }

    #[test]
    fn urls_split_as_the_spec_says() {
        assert_eq!(
            parts("https://user:pw@Example.COM:8443/a/b?x=1#frag"),
            [
                "https",
                "user:pw",
                "example.com",
                "8443",
                "/a/b",
                "x=1",
                "frag"
            ]
        );
        assert_eq!(parts("wss://h/p")[3], "443");
        assert_eq!(parts("http://h")[4], "");
        assert_eq!(parts("tcp://[::1]:80")[2], "::1");
        assert_eq!(parts("tcp://h")[3], "");
        assert_eq!(parts("inproc://x")[4], "x");
        assert_eq!(parts("abstract://x")[4], "x");
        assert_eq!(parts("ipc:///tmp/s")[4], "/tmp/s");
        assert_eq!(parts("http://"), ["http", "", "", "80", "", "", ""]);
        assert_eq!(parts("HTTP://H/Path")[..3], ["http", "", "h"]);
        assert_eq!(parts("tcp://127.0.0.1:5555")[2..4], ["127.0.0.1", "5555"]);
    }

    #[test]
    fn non_urls_are_refused() {
        for bad in [
            "not a url",
            "",
            "://x",
            "1a://x",
            "tcp://[::1",
            "tcp://h:x",
            "tcp://a:b:1",
        ] {
            assert!(parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn reasons() {
        assert_eq!(reason(418), "I'm a teapot");
        assert_eq!(reason(999), "Unknown HTTP Status");
        assert_eq!(reason(i32::MIN), "Unknown HTTP Status");
    }
}
