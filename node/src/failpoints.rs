//! Crash injection for tests: a node kills itself (`SIGKILL`, exactly what `kill -9` does) at a
//! chosen point inside a step, where no outside `kill -9` can be aimed.
//!
//! Compiled in only with the `failpoints` feature (the tests turn it on; release builds leave
//! it off, and then every function here is empty). The points are configured with the `fail`
//! crate's `FAILPOINTS` variable; the argument, `KIND` or `KIND@NODE`, names the message kind
//! that triggers the crash and optionally the one node that crashes (a cluster launcher passes
//! its environment to every node, and strips `FAILPOINTS` from restarts):
//!
//! * `after-save-before-send=return(halt_ack)`: in a step that saved, after the durable write
//!   and before its first send, when that send is a `halt_ack`. Nothing was acknowledged yet,
//!   but the promise is on disk: the restarted node must load it.
//! * `mid-broadcast=return(coordinator@5004)`: between the first and the second send of a
//!   step, when they are `coordinator` messages of node 5004. The first is given time to leave
//!   (libzmq sends from its own I/O thread); the rest is never handed over: a broadcast cut
//!   short.

use bully_model::Msg;

/// Called by node `me` before the `index`-th send of a step (0-based); `saved` says whether the
/// step has made a write durable already.
pub fn before_send(me: u64, msg: &Msg, index: usize, saved: bool) {
    #[cfg(feature = "failpoints")]
    {
        let wanted = |arg: Option<String>| {
            let arg = arg.unwrap_or_default();
            let (kind, node) = arg.split_once('@').unwrap_or((&arg, ""));
            (kind.is_empty() || kind == msg.kind()) && (node.is_empty() || node == me.to_string())
        };
        if index == 0 && saved && fail::eval("after-save-before-send", wanted) == Some(true) {
            die("after-save-before-send", msg);
        }
        if index == 1 && fail::eval("mid-broadcast", wanted) == Some(true) {
            // Let the first frame leave before the process dies.
            std::thread::sleep(std::time::Duration::from_millis(100));
            die("mid-broadcast", msg);
        }
    }
    #[cfg(not(feature = "failpoints"))]
    let _ = (me, msg, index, saved);
}

/// Reads `FAILPOINTS`; the returned guard keeps the configuration for the process's life.
#[cfg(feature = "failpoints")]
pub fn setup() -> Option<fail::FailScenario<'static>> {
    let points = std::env::var("FAILPOINTS").ok()?;
    tracing::warn!("crash injection armed: FAILPOINTS={points}");
    Some(fail::FailScenario::setup())
}

#[cfg(not(feature = "failpoints"))]
pub fn setup() -> Option<()> {
    None
}

#[cfg(feature = "failpoints")]
fn die(point: &str, msg: &Msg) -> ! {
    tracing::warn!(
        "failpoint {point}: killing this node before it sends {}",
        msg.kind()
    );
    // SAFETY: kill(2) on our own pid; SIGKILL ends the process before the call returns.
    unsafe {
        libc::kill(libc::getpid(), libc::SIGKILL);
    }
    std::process::abort()
}
