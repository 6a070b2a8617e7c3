//! `bully-model`: check, explore or simulate the Bully model (the definitions: [`bully_model::cli`]).

use bully_model::cli::{self, Cli};
use std::process::ExitCode;

/// jemalloc, not glibc's allocator: the symbolic engine's workers free what the other
/// allocated (the networks they send each other), and glibc's arenas then wait on each other's
/// locks. (mimalloc avoids that too, but copies the stores' large vectors when they grow, into
/// fresh pages.)
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    cli::run(Cli::parse_args(std::env::args_os()))
}
