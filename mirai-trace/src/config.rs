//! Reading the standard `OTEL_*` environment variables into a decision: tracing off, or on
//! with these settings.
//!
//! Pure (the environment is a function argument), so that every rule is unit-tested.

use std::time::Duration;

/// Default of `OTEL_SERVICE_NAME` for mirai processes (the SDK's own default would be
/// `unknown_service:<executable>`, which says `Rscript` for every R process).
pub const DEFAULT_SERVICE_NAME: &str = "mirai";

/// Default export timeout (`OTEL_EXPORTER_OTLP_TIMEOUT`), as in the OTLP specification.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// How tracing is set up when it is on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// The full URL spans are POSTed to (`.../v1/traces`), `http://` only.
    pub endpoint: String,
    /// `service.name` of the resource: `OTEL_SERVICE_NAME`, else a `service.name` given in
    /// `OTEL_RESOURCE_ATTRIBUTES` (then `None` here: the SDK reads it), else `mirai`.
    pub service_name: Option<String>,
    /// Connect, write and read timeout of one export request.
    pub timeout: Duration,
}

/// What the environment asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Decision {
    /// Tracing is off; the text says why (for a debug log line, or a warning when the
    /// configuration asked for something this build cannot do).
    Off {
        /// Why.
        reason: String,
        /// True when the user evidently wanted tracing but the configuration cannot be
        /// honoured (worth a warning); false for the ordinary "not configured" cases.
        warn: bool,
    },
    /// Tracing is on.
    On(Settings),
}

fn off(reason: impl Into<String>) -> Decision {
    Decision::Off {
        reason: reason.into(),
        warn: false,
    }
}

fn refuse(reason: impl Into<String>) -> Decision {
    Decision::Off {
        reason: reason.into(),
        warn: true,
    }
}

/// Decides from the environment, read through `var` (`std::env::var` in production).
///
/// Off when `OTEL_SDK_DISABLED=true`, when `OTEL_TRACES_EXPORTER` does not name `otlp` (e.g.
/// `none`), or when no endpoint is configured (`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, used as
/// is, or `OTEL_EXPORTER_OTLP_ENDPOINT`, to which `/v1/traces` is appended). Configurations
/// this build cannot honour (another protocol than `http/protobuf`, an `https://` endpoint,
/// a malformed timeout) are off with a warning rather than half-working.
pub fn decide(var: impl Fn(&str) -> Option<String>) -> Decision {
    let get = |k: &str| {
        var(k)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    if get("OTEL_SDK_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
        return off("OTEL_SDK_DISABLED is true");
    }
    if let Some(exporters) = get("OTEL_TRACES_EXPORTER") {
        let names: Vec<String> = exporters
            .split(',')
            .map(|s| s.trim().to_ascii_lowercase())
            .collect();
        if !names.iter().any(|n| n == "otlp") {
            return if names.iter().all(|n| n == "none" || n.is_empty()) {
                off("OTEL_TRACES_EXPORTER is none")
            } else {
                refuse(format!(
                    "OTEL_TRACES_EXPORTER={exporters} names no exporter mirai has (only otlp is built in)"
                ))
            };
        }
    }
    let endpoint = match (
        get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"),
        get("OTEL_EXPORTER_OTLP_ENDPOINT"),
    ) {
        (Some(e), _) => e,
        (None, Some(base)) => format!("{}/v1/traces", base.trim_end_matches('/')),
        (None, None) => return off("no OTLP endpoint is configured (OTEL_EXPORTER_OTLP_ENDPOINT)"),
    };
    let protocol =
        get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL").or_else(|| get("OTEL_EXPORTER_OTLP_PROTOCOL"));
    if let Some(p) = protocol.filter(|p| p != "http/protobuf") {
        return refuse(format!(
            "OTLP protocol '{p}' is not supported by mirai's exporter; use http/protobuf"
        ));
    }
    let lower = endpoint.to_ascii_lowercase();
    if lower.starts_with("https://") {
        return refuse(format!(
            "endpoint {endpoint}: mirai's exporter speaks plain http only; send to a local collector over http"
        ));
    }
    if !lower.starts_with("http://") {
        return refuse(format!("endpoint '{endpoint}' is not an http:// URL"));
    }
    let timeout = match get("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT")
        .or_else(|| get("OTEL_EXPORTER_OTLP_TIMEOUT"))
    {
        None => DEFAULT_TIMEOUT,
        Some(ms) => match ms.parse::<u64>() {
            Ok(ms) if ms > 0 => Duration::from_millis(ms),
            _ => {
                return refuse(format!(
                    "OTLP timeout '{ms}' is not a positive whole number of milliseconds"
                ))
            }
        },
    };
    let service_name = match get("OTEL_SERVICE_NAME") {
        Some(name) => Some(name),
        None if resource_names_service(get("OTEL_RESOURCE_ATTRIBUTES").as_deref()) => None,
        None => Some(DEFAULT_SERVICE_NAME.to_string()),
    };
    Decision::On(Settings {
        endpoint,
        service_name,
        timeout,
    })
}

/// True if `OTEL_RESOURCE_ATTRIBUTES` sets `service.name`.
fn resource_names_service(attrs: Option<&str>) -> bool {
    attrs.is_some_and(|a| {
        a.split(',').any(|kv| {
            kv.split_once('=')
                .is_some_and(|(k, v)| k.trim() == "service.name" && !v.trim().is_empty())
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn with(pairs: &[(&str, &str)]) -> Decision {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        decide(|k| m.get(k).cloned())
    }

    fn on(d: Decision) -> Settings {
        match d {
            Decision::On(s) => s,
            other => panic!("expected on, got {other:?}"),
        }
    }

    fn is_off(d: &Decision, warned: bool) -> bool {
        matches!(d, Decision::Off { warn, .. } if *warn == warned)
    }

    #[test]
    fn nothing_configured_is_off_without_a_warning() {
        assert!(is_off(&with(&[]), false));
        assert!(is_off(&with(&[("OTEL_SERVICE_NAME", "x")]), false));
        assert!(is_off(
            &with(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "  ")]),
            false
        ));
    }

    #[test]
    fn the_base_endpoint_gets_the_traces_path_and_the_signal_endpoint_is_used_as_is() {
        let s = on(with(&[(
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "http://127.0.0.1:4318/",
        )]));
        assert_eq!(s.endpoint, "http://127.0.0.1:4318/v1/traces");
        assert_eq!(s.service_name.as_deref(), Some("mirai"));
        assert_eq!(s.timeout, DEFAULT_TIMEOUT);
        let s = on(with(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://a:1"),
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://b:2/custom"),
        ]));
        assert_eq!(s.endpoint, "http://b:2/custom");
    }

    #[test]
    fn disabled_sdk_and_none_exporter_win_over_an_endpoint() {
        let ep = ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318");
        assert!(is_off(&with(&[ep, ("OTEL_SDK_DISABLED", "TRUE")]), false));
        assert!(is_off(
            &with(&[ep, ("OTEL_TRACES_EXPORTER", "none")]),
            false
        ));
        assert!(is_off(
            &with(&[ep, ("OTEL_TRACES_EXPORTER", "zipkin")]),
            true
        ));
        on(with(&[ep, ("OTEL_SDK_DISABLED", "false")]));
        on(with(&[ep, ("OTEL_TRACES_EXPORTER", "console, otlp")]));
    }

    #[test]
    fn unsupported_transport_settings_are_refused_with_a_warning() {
        let ep = ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318");
        assert!(is_off(
            &with(&[ep, ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")]),
            true
        ));
        assert!(is_off(
            &with(&[ep, ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/json")]),
            true
        ));
        on(with(&[
            ep,
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
        ]));
        assert!(is_off(
            &with(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "https://collector:4318")]),
            true
        ));
        assert!(is_off(
            &with(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4318")]),
            true
        ));
        assert!(is_off(
            &with(&[ep, ("OTEL_EXPORTER_OTLP_TIMEOUT", "soon")]),
            true
        ));
        let s = on(with(&[ep, ("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "250")]));
        assert_eq!(s.timeout, Duration::from_millis(250));
    }

    #[test]
    fn service_name_comes_from_the_environment_else_mirai() {
        let ep = ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318");
        assert_eq!(
            on(with(&[ep, ("OTEL_SERVICE_NAME", "etl")]))
                .service_name
                .as_deref(),
            Some("etl")
        );
        // Left to the SDK, which reads OTEL_RESOURCE_ATTRIBUTES itself.
        let s = on(with(&[
            ep,
            ("OTEL_RESOURCE_ATTRIBUTES", "team=x, service.name=etl"),
        ]));
        assert_eq!(s.service_name, None);
        let s = on(with(&[ep, ("OTEL_RESOURCE_ATTRIBUTES", "team=x")]));
        assert_eq!(s.service_name.as_deref(), Some("mirai"));
    }
}
