//! How the tool fails: a message on stderr and a documented exit code.

use std::fmt;

use anstyle::{AnsiColor, Style};
use nexus_runtime::CallError;

/// The exit codes, as `nexus --help` lists them.
pub const EXIT_CODES: &str = "\
Exit codes:
  0  success
  1  the operation failed or was canceled; `definition diff`: a breaking change
  2  usage: bad arguments, input, file or endpoint name
  3  no answer: transport error, handler error, timeout, or a store that cannot be used";

/// The operation ended unsuccessfully, or a diff found a breaking change.
pub const OPERATION_FAILED: u8 = 1;
/// Bad arguments, input or files.
pub const USAGE: u8 = 2;
/// The call (or the store) did not complete: transport, handler, timeout.
pub const NO_ANSWER: u8 = 3;

/// A failure of a command: its exit code and what to tell the user.
#[derive(Debug)]
pub struct Failure {
    /// The process exit code.
    pub code: u8,
    /// The message (one line or a few).
    pub message: String,
}

impl Failure {
    /// A usage failure (exit code 2).
    pub fn usage(message: impl Into<String>) -> Self {
        Self {
            code: USAGE,
            message: message.into(),
        }
    }

    /// A failure to get an answer (exit code 3).
    pub fn no_answer(message: impl Into<String>) -> Self {
        Self {
            code: NO_ANSWER,
            message: message.into(),
        }
    }

    /// A silent failure with this code (the command printed what it had to say).
    pub fn quiet(code: u8) -> Self {
        Self {
            code,
            message: String::new(),
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<CallError> for Failure {
    fn from(error: CallError) -> Self {
        match &error {
            CallError::Operation(e) => Self {
                code: OPERATION_FAILED,
                message: format!("operation {}: {}", e.state.as_str(), e.message),
            },
            CallError::Canceled => Self {
                code: OPERATION_FAILED,
                message: error.to_string(),
            },
            CallError::Handler(e) => Self::no_answer(format!(
                "handler error {}: {}",
                e.error_type.as_str(),
                e.message
            )),
            CallError::Invalid(message) => Self::usage(message.clone()),
            _ => Self::no_answer(error.to_string()),
        }
    }
}

/// Prints `failure` on stderr as `nexus: error: …` (red on a terminal).
pub fn report(failure: &Failure) {
    if failure.message.is_empty() {
        return;
    }
    let red = Style::new().bold().fg_color(Some(AnsiColor::Red.into()));
    anstream::eprintln!("{red}nexus: error:{red:#} {}", failure.message);
}
