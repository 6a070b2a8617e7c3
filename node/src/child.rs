//! Child node processes (the local cluster's, the replayer's) that never outlive their parent.

use std::os::unix::process::CommandExt;
use std::process::Command;

/// Makes the process `cmd` starts die with this one (`PR_SET_PDEATHSIG = SIGKILL`, even if
/// this one is killed with -9), in a process group of its own (so a signal to the group
/// reaches it alone).
pub fn die_with_parent(cmd: &mut Command) {
    let parent = std::process::id();
    // SAFETY: only async-signal-safe libc calls between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            libc::setpgid(0, 0);
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            if libc::getppid() as u32 != parent {
                libc::_exit(1); // the parent died before the line above
            }
            Ok(())
        });
    }
}
