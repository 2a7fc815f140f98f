//! Configuration errors.

use std::path::PathBuf;

/// Why the configuration could not be loaded. Every variant but [`ConfigError::Cli`] means
/// "fix the configuration": the binary prints it and exits with code 2.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The command line asked for `--help` or `--version`, or is malformed (an unknown flag).
    /// [`clap::Error::exit`] prints it and exits with the right code (0 for help).
    #[error(transparent)]
    Cli(#[from] clap::Error),
    /// The `--config` file cannot be read or is not valid TOML of known settings.
    #[error("config file {}: {reason}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A setting has an invalid value, or settings contradict each other.
    #[error("invalid {setting} (from {origin}): {reason}")]
    Invalid {
        /// The setting's documented (environment) name, such as `PORT`.
        setting: &'static str,
        /// Where the value came from: a flag, an environment variable, the file, or the
        /// configuration built in code.
        origin: String,
        /// What is wrong, and what is expected.
        reason: String,
    },
}

impl ConfigError {
    /// The process exit code for this error: 2 for an invalid configuration (as for a
    /// malformed command line), 0 for `--help` and `--version`.
    #[must_use]
    pub fn exit_code(&self) -> i32 {
        match self {
            Self::Cli(err) => err.exit_code(),
            Self::File { .. } | Self::Invalid { .. } => 2,
        }
    }

    /// The setting an [`Invalid`](Self::Invalid) error is about.
    #[must_use]
    pub fn setting(&self) -> Option<&'static str> {
        match self {
            Self::Invalid { setting, .. } => Some(setting),
            _ => None,
        }
    }
}
