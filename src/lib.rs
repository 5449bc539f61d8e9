//! Gantry: a MySQL read/write-splitting proxy. The binary (`main.rs`) is a
//! thin shell around [`app::run`]; the modules are public for the
//! integration tests and benchmarks.

pub mod accounts;
pub mod admin;
pub mod app;
pub mod backend;
pub mod config;
pub mod context;
pub mod failover;
pub mod fdlimit;
pub mod frontend;
#[doc(hidden)]
pub mod fuzzing;
pub mod gtid;
pub mod health;
pub mod metrics;
pub mod protocol;
pub mod router;
pub mod runtime;
pub mod shutdown;
pub mod tools;
