//! Starting local daemon processes. (Filled in by the host helper.)

/// A program and arguments to start a daemon with.
#[derive(Debug, Clone)]
pub struct Command {
    /// The executable.
    pub program: std::path::PathBuf,
    /// Its arguments.
    pub args: Vec<String>,
}
