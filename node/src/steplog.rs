//! The NDJSON step log: one line per handler call, enough to replay it through the same handler.
//! The line is the model's [`LoggedStep`] (its documentation gives the format); this module only
//! writes it.

use bully_model::LoggedStep;
use std::io::Write;

/// Where step lines go.
pub struct StepLog {
    out: Box<dyn Write + Send>,
}

impl StepLog {
    pub fn new(out: Box<dyn Write + Send>) -> StepLog {
        StepLog { out }
    }

    /// Writes one line and flushes it (a node killed with -9 loses no finished step).
    pub fn write(&mut self, step: &LoggedStep) -> std::io::Result<()> {
        let mut bytes = serde_json::to_vec(step).map_err(std::io::Error::other)?;
        bytes.push(b'\n');
        self.out.write_all(&bytes)?;
        self.out.flush()
    }
}
