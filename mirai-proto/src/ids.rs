//! Typed identifiers shared by the layers: [`TaskId`] and [`DaemonId`].
//!
//! Both are plain `u64`s underneath, and a [`TaskId`] encodes on the wire exactly as its
//! integer does (serde transparent), so switching a `u64` field to it changes no frame's bytes.
//! The frames carry [`TaskId`] (re-exported as [`crate::TaskId`]).

use std::fmt;

use serde::{Deserialize, Serialize};

/// Defines a `u64` newtype with the traits an identifier needs.
macro_rules! id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
        )]
        #[serde(transparent)]
        #[repr(transparent)]
        pub struct $name(pub u64);

        impl $name {
            /// The id `n`.
            pub const fn new(n: u64) -> Self {
                $name(n)
            }

            /// The integer underneath.
            pub const fn get(self) -> u64 {
                self.0
            }
        }

        /// The bare integer, as in logs.
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }

        impl From<u64> for $name {
            fn from(n: u64) -> Self {
                $name(n)
            }
        }

        impl From<$name> for u64 {
            fn from(id: $name) -> Self {
                id.0
            }
        }
    };
}

id! {
    /// Identifies a task for its whole life, host and daemon side. Real tasks count from 1;
    /// 0 is the leave notice ([`TaskId::LEAVE_NOTICE`]).
    TaskId
}

id! {
    /// Identifies a daemon for as long as it is connected (the host uses the transport's peer
    /// id of its connection). Never reused within one host.
    DaemonId
}

impl TaskId {
    /// The id of a leave notice (see the crate docs), [`crate::LEAVE_NOTICE_ID`].
    pub const LEAVE_NOTICE: TaskId = TaskId(0);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeSet, HashSet};

    #[test]
    fn ids_behave_as_their_integers() {
        let a = TaskId::new(7);
        assert_eq!((a.get(), u64::from(a), TaskId::from(7)), (7, 7, a));
        assert_eq!(a.to_string(), "7");
        assert_eq!(format!("{a:?}"), "TaskId(7)");
        assert!(TaskId(1) < TaskId(2));
        assert_eq!(TaskId::default(), TaskId::LEAVE_NOTICE);
        let set: HashSet<DaemonId> = [DaemonId(1), DaemonId(1), DaemonId(2)].into();
        assert_eq!(set.len(), 2);
        let ordered: Vec<_> = BTreeSet::from([TaskId(3), TaskId(1)]).into_iter().collect();
        assert_eq!(ordered, [TaskId(1), TaskId(3)]);
    }

    #[test]
    fn a_task_id_encodes_as_its_integer() {
        for n in [
            0,
            1,
            23,
            24,
            255,
            256,
            65_536,
            u64::from(u32::MAX) + 1,
            u64::MAX,
        ] {
            let mut typed = Vec::new();
            ciborium::into_writer(&TaskId(n), &mut typed).unwrap();
            let mut bare = Vec::new();
            ciborium::into_writer(&n, &mut bare).unwrap();
            assert_eq!(typed, bare, "{n}");
            let back: TaskId = ciborium::from_reader(&bare[..]).unwrap();
            assert_eq!(back, TaskId(n));
        }
    }
}
