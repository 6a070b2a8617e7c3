//! How a command of `bully-node` fails: a one-line message and its exit code.

use std::process::ExitCode;

/// A failure with its exit code: 2 for bad arguments or configuration, 1 at run time.
#[derive(Debug)]
pub enum Failure {
    Usage(String),
    Runtime(String),
    /// A run was judged and its verdict printed already: exit with the verdict's code (the
    /// `conformance` tool's: 1 violation, 3 conforms only after leaving an assumption).
    Verdict(u8),
}

impl Failure {
    pub fn exit(self) -> ExitCode {
        let (code, msg) = match self {
            Failure::Usage(m) => (2, m),
            Failure::Runtime(m) => (1, m),
            Failure::Verdict(code) => return ExitCode::from(code),
        };
        eprintln!("bully-node: error: {msg}");
        ExitCode::from(code)
    }
}
