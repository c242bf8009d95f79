//! Deadlines for interruptible waits: the engine is waited on in short slices so that R's
//! pending-interrupt flag is checked between them.

use std::time::{Duration, Instant};

/// Longest single wait on the engine before checking for a user interrupt.
pub(crate) const SLICE: Duration = Duration::from_millis(50);

/// When a wait gives up; `None` waits forever.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Deadline {
    end: Option<Instant>,
}

impl Deadline {
    /// A deadline `timeout` from now (`None`, or too far to represent: never).
    pub(crate) fn after(timeout: Option<Duration>) -> Deadline {
        Deadline {
            end: timeout.and_then(|t| Instant::now().checked_add(t)),
        }
    }

    /// The next slice to wait: at most `max`, zero once the deadline has passed (so that a
    /// zero timeout still checks once).
    pub(crate) fn slice(&self, max: Duration) -> Duration {
        match self.end {
            None => max,
            Some(end) => end.saturating_duration_since(Instant::now()).min(max),
        }
    }

    /// True once the deadline has passed.
    pub(crate) fn expired(&self) -> bool {
        self.end.is_some_and(|end| Instant::now() >= end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forever_never_expires_and_slices_at_max() {
        let d = Deadline::after(None);
        assert!(!d.expired());
        assert_eq!(d.slice(SLICE), SLICE);
    }

    #[test]
    fn zero_timeout_is_expired_with_zero_slice() {
        let d = Deadline::after(Some(Duration::ZERO));
        assert!(d.expired());
        assert_eq!(d.slice(SLICE), Duration::ZERO);
    }

    #[test]
    fn long_timeout_slices_at_max() {
        let d = Deadline::after(Some(Duration::from_secs(3600)));
        assert!(!d.expired());
        assert_eq!(d.slice(SLICE), SLICE);
    }

    #[test]
    fn unrepresentable_timeout_means_forever() {
        let d = Deadline::after(Some(Duration::MAX));
        assert!(!d.expired());
    }
}
