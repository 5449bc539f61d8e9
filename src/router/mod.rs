//! Statement router: decides whether a client statement may run on a
//! replica or must go to the primary, and parses the session-state
//! statements (`SET`, `USE`) the proxy replays on backend connections.
//!
//! Self-contained on purpose (std + sqlparser only) so it can be tested and
//! benchmarked apart from the proxy.

mod classify;
mod facts;
mod keywords;
mod lexer;
#[cfg(test)]
mod proptests;
mod set;
mod shape_cache;
#[cfg(test)]
mod tests;

pub use classify::{
    classify, statement_ranges, uninspected, Classification, Hint, Holds, Route, StatementKind,
};
pub use facts::{consistency_hint, gantry_consistency_value, parse_kill, with_connection_id};
pub use set::{parse_set, use_schema, SetAssignment, SetScope};
pub use shape_cache::{clear_shape_cache, shape_cache_stats};
