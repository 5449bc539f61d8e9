//! Backends: raw protocol connections, per-backend pools and the immutable
//! topology snapshot the data path reads through `arc-swap`.

pub mod conn;
mod full_auth;
pub mod lease;
pub mod limits;
pub mod pool;
pub mod relay;
pub mod stream;
pub mod sync;
pub mod tls;
pub mod topology;

pub use conn::{BackendConn, ConnectParams};
pub use lease::Lease;
pub use limits::{Limits, Purpose};
pub use pool::{Pool, PoolConfig, PoolKey};
pub use topology::{BackendEntry, BackendRuntime, BackendState, Role, Topology};
