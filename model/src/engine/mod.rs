//! The search engines: [`explicit`] keeps every state (breadth first, with the state graph
//! the liveness pass reads); [`symbolic`] keeps each combination of process states once, with
//! its set of networks as a decision diagram.

pub mod explicit;
pub mod symbolic;
