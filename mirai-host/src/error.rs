//! Why a host could not start or take a task.

/// Why a host could not start or take a task.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HostError {
    /// Listening failed.
    #[error(transparent)]
    Transport(#[from] mirai_transport::Error),
    /// The host was reset; it takes no more tasks.
    #[error("the compute profile has been reset")]
    Closed,
    /// Starting daemon processes failed.
    #[error("cannot launch daemon '{program}': {source}")]
    Launch {
        /// The program that could not be started.
        program: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The dispatcher thread could not be started.
    #[error("cannot start the dispatcher thread: {0}")]
    Thread(#[source] std::io::Error),
}
