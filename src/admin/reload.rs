//! RELOAD CONFIG and SIGHUP (installed by `app`): re-read the file and
//! re-apply the original command line (`config::load_from(launch_args)`),
//! then swap in one runtime snapshot (settings, accounts, allowlist,
//! configuration) and publish the backend lists.

use std::sync::Arc;

use super::commands::{AdminError, NEW_BACKEND_STATE};
use crate::app;
use crate::backend::{BackendEntry, BackendRuntime, Role};
use crate::config::{self, BackendAddr, Config};
use crate::context::Context;
use crate::runtime::Runtime;

/// What a reload changed, for the log.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub backends_added: usize,
    pub backends_removed: usize,
}

pub async fn reload(ctx: &Arc<Context>) -> Result<Summary, AdminError> {
    if ctx.config.load().config_path.is_none() {
        return Err(AdminError::NoConfigFile("RELOAD CONFIG"));
    }
    let args = ctx.launch_args.clone();
    let cfg = tokio::task::spawn_blocking(move || config::load_from(args))
        .await
        .map_err(|e| AdminError::Internal(format!("RELOAD CONFIG task failed: {e}")))??;
    let summary = apply(ctx, cfg)?;
    // An operator looked: a suspended automatic failover may run again.
    ctx.failovers.resume();
    tracing::info!(
        added = summary.backends_added,
        removed = summary.backends_removed,
        "configuration reloaded"
    );
    Ok(summary)
}

/// Applies a freshly loaded configuration to the running proxy. Listen
/// addresses, thread counts and the pool settings of existing backends need
/// a restart; everything else takes effect for the next connection or
/// statement.
pub fn apply(ctx: &Context, cfg: Config) -> Result<Summary, AdminError> {
    let old = ctx.config.load_full();
    for (what, before, after) in [
        ("proxy-address", &old.proxy_address, &cfg.proxy_address),
        ("admin-address", &old.admin_address, &cfg.admin_address),
    ] {
        if before != after {
            tracing::warn!(
                option = what,
                "changed in the configuration; takes effect at restart"
            );
        }
    }
    // Certificates are read before anything changes: a bad file leaves
    // the running configuration as it was.
    let settings = app::settings_from(&cfg)?;
    // New backend connections use the files just read.
    crate::backend::tls::install(cfg.backend_tls.clone());
    let pool = settings.pool;
    let cfg = Arc::new(cfg);
    // One swap: nobody sees new accounts with an old allowlist or settings.
    ctx.runtime.store(Arc::new(Runtime {
        settings: Arc::new(settings),
        users: Arc::new(app::users_from(&cfg)),
        client_ips: Arc::new(cfg.client_ips.clone()),
        config: cfg.clone(),
    }));

    let mut summary = Summary::default();
    let wanted: Vec<(BackendAddr, Role)> = cfg
        .proxy_backend_addresses
        .iter()
        .map(|a| (a.clone(), Role::Primary))
        .chain(
            cfg.proxy_read_only_backend_addresses
                .iter()
                .map(|a| (a.clone(), Role::Replica)),
        )
        .collect();
    let before = ctx.topology.load_full();
    // The file is the operator's word now: earlier removals are forgotten.
    ctx.removed_by_operator
        .store(std::sync::Arc::new(Vec::new()));
    ctx.update_topology(|current| {
        summary = Summary::default();
        let mut next = Vec::with_capacity(wanted.len());
        for (addr, role) in &wanted {
            let same = |b: &&BackendEntry| {
                BackendAddr::parse(b.addr())
                    .is_ok_and(|x| x.host.eq_ignore_ascii_case(&addr.host) && x.port == addr.port)
            };
            // Existing backends keep their runtime (pools, counters) and the
            // state the health loop or an operator gave them.
            let entry = match current.iter().find(same) {
                Some(b) => {
                    let mut b = b.clone();
                    b.role = *role;
                    b.weight = addr.weight;
                    b.discovered = false;
                    b
                }
                None => {
                    summary.backends_added += 1;
                    let rt = BackendRuntime::new(addr.to_string(), pool);
                    BackendEntry::new(rt, *role, addr.weight, NEW_BACKEND_STATE)
                }
            };
            next.push(entry);
        }
        // Replicas found by discovery are the health loop's, not the file's.
        for b in current.iter().filter(|b| b.discovered) {
            if !next.iter().any(|n| n.runtime.id == b.runtime.id) {
                next.push(b.clone());
            }
        }
        next
    });
    let after = ctx.topology.load();
    summary.backends_removed = before
        .backends
        .iter()
        .filter(|b| after.by_id(b.runtime.id).is_none())
        .count();
    Ok(summary)
}
