//! mirai's time and size limits as R gives them: milliseconds, counts and byte budgets where
//! `NA`, `Inf` (and for some, negative values) mean "none".

use std::time::Duration;

/// Milliseconds as given to a waiting routine: negative, `NA` or infinite means "forever"
/// (`None`).
pub(crate) fn wait_timeout(ms: f64) -> Option<Duration> {
    if ms.is_finite() && ms >= 0.0 {
        // Too large to represent: as good as forever.
        Duration::try_from_secs_f64(ms / 1000.0).ok()
    } else {
        None
    }
}

/// Milliseconds as a limit (`idletime`, `.timeout`): `NA`/`Inf` means none; negative is an error.
pub(crate) fn limit_ms(ms: f64, name: &str) -> Result<Option<Duration>, String> {
    if ms.is_nan() || ms == f64::INFINITY {
        Ok(None)
    } else if ms >= 0.0 {
        Ok(Duration::try_from_secs_f64(ms / 1000.0).ok())
    } else {
        Err(format!(
            "`{name}` must be a non-negative number of milliseconds"
        ))
    }
}

/// A count limit (`maxtasks`): `NA`/`Inf` means none.
pub(crate) fn limit_count(n: f64, name: &str) -> Result<Option<u64>, String> {
    if n.is_nan() || n == f64::INFINITY {
        Ok(None)
    } else if n >= 0.0 {
        Ok(Some(n as u64))
    } else {
        Err(format!("`{name}` must be a non-negative number"))
    }
}

/// A memory budget in bytes: `NA`, `Inf` or `<= 0` means none.
pub(crate) fn memory_budget(bytes: f64) -> Option<u64> {
    if bytes.is_finite() && bytes > 0.0 {
        Some(bytes as u64)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_timeout_negative_na_inf_mean_forever() {
        assert_eq!(wait_timeout(-1.0), None);
        assert_eq!(wait_timeout(f64::NAN), None);
        assert_eq!(wait_timeout(f64::INFINITY), None);
        assert_eq!(wait_timeout(0.0), Some(Duration::ZERO));
        assert_eq!(wait_timeout(1500.0), Some(Duration::from_millis(1500)));
        assert_eq!(wait_timeout(1e300), None);
    }

    #[test]
    fn limits_map_inf_and_na_to_none_and_reject_negatives() {
        assert_eq!(limit_ms(f64::INFINITY, "x"), Ok(None));
        assert_eq!(limit_ms(f64::NAN, "x"), Ok(None));
        assert_eq!(limit_ms(250.0, "x"), Ok(Some(Duration::from_millis(250))));
        assert!(limit_ms(-1.0, "idletime")
            .unwrap_err()
            .contains("`idletime`"));
        assert_eq!(limit_count(f64::INFINITY, "m"), Ok(None));
        assert_eq!(limit_count(10.0, "m"), Ok(Some(10)));
        assert!(limit_count(-2.0, "m").is_err());
    }

    #[test]
    fn memory_budget_none_for_na_inf_and_non_positive() {
        assert_eq!(memory_budget(f64::NAN), None);
        assert_eq!(memory_budget(f64::INFINITY), None);
        assert_eq!(memory_budget(0.0), None);
        assert_eq!(memory_budget(-5.0), None);
        assert_eq!(memory_budget(1e6), Some(1_000_000));
    }
}
