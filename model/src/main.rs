//! `bully-model`: check, explore or simulate the Bully model (the definitions: [`bully_model::cli`]).

use bully_model::cli::{self, Cli};
use std::process::ExitCode;

/// jemalloc, not glibc's allocator: the symbolic engine's workers free what the other
/// allocated (the networks they send each other), and glibc's arenas then wait on each other's
/// locks. (mimalloc avoids that too, but copies the stores' large vectors when they grow, into
/// fresh pages.)
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's options, read when it starts (a C string; `_RJEM_MALLOC_CONF` overrides them).
/// Transparent huge pages for all its memory: the diagram stores are gigabytes read at random,
/// and with 4 KiB pages the processor's page-table cache misses on most reads (the kernel's
/// default here gives huge pages only to memory that asks for them).
#[repr(transparent)]
struct MallocConf(*const u8);
// SAFETY: a pointer to a constant string, never written.
unsafe impl Sync for MallocConf {}
#[unsafe(export_name = "_rjem_malloc_conf")]
static MALLOC_CONF: MallocConf = MallocConf(c"thp:always".as_ptr().cast());

fn main() -> ExitCode {
    cli::run(Cli::parse_args(std::env::args_os()))
}
