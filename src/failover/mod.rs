//! Built-in failover (issue 12): the pure parts, with no I/O. What to
//! decide (has the primary failed, which replica to promote, may an old
//! primary rejoin) and which statements to send, per server flavour. The
//! health loop runs the statements and feeds the observations in.

pub mod candidate;
pub mod detect;
pub mod mode;
pub mod rejoin;
pub mod run;
pub mod sql;
pub mod status;
pub mod switchover;
