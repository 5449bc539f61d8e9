//! Prometheus metrics over HTTP (`metrics-address`). The data path only
//! bumps atomics; this module turns them into a text exposition when
//! scraped, so scraping never touches the hot path.

use prometheus::{Encoder, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::backend::BackendState;
use crate::context::Context;
use crate::health::events::{self, EventKind};

/// Metric families, re-filled from the context's counters on each scrape.
struct Families {
    registry: Registry,
    counters: IntCounterVec,
    gauges: IntGaugeVec,
    backend_counters: IntCounterVec,
    backend_gauges: IntGaugeVec,
    causal: IntCounterVec,
    events: IntCounterVec,
    failovers: IntCounterVec,
}

fn families() -> Result<Families, prometheus::Error> {
    let registry = Registry::new_custom(Some("gantry".into()), None)?;
    let counters = IntCounterVec::new(
        Opts::new("events_total", "Proxy-wide counters"),
        &["counter"],
    )?;
    let gauges = IntGaugeVec::new(Opts::new("current", "Proxy-wide gauges"), &["gauge"])?;
    let backend_counters = IntCounterVec::new(
        Opts::new("backend_statements_total", "Statements routed to a backend"),
        &["address", "type", "kind"],
    )?;
    let backend_gauges = IntGaugeVec::new(
        Opts::new("backend", "Backend state (up=1), lag and pool connections"),
        &["address", "type", "metric"],
    )?;
    let causal = IntCounterVec::new(
        Opts::new(
            "causal_reads_total",
            "Reads under a causal consistency mode, by how they were served",
        ),
        &["mode", "served"],
    )?;
    let events = IntCounterVec::new(
        Opts::new("health_events_total", "Health loop events"),
        &["kind"],
    )?;
    let failovers = IntCounterVec::new(
        Opts::new(
            "failovers_total",
            "Failovers and switchovers, by kind and outcome",
        ),
        &["kind", "outcome"],
    )?;
    for c in [&counters, &backend_counters, &causal, &events, &failovers] {
        registry.register(Box::new(c.clone()))?;
    }
    for g in [&gauges, &backend_gauges] {
        registry.register(Box::new(g.clone()))?;
    }
    Ok(Families {
        registry,
        counters,
        gauges,
        backend_counters,
        backend_gauges,
        causal,
        events,
        failovers,
    })
}

fn set_counter(v: &IntCounterVec, labels: &[&str], value: u64) {
    let c = v.with_label_values(labels);
    c.reset();
    c.inc_by(value);
}

/// The text exposition of everything Gantry counts.
pub fn render(ctx: &Context) -> String {
    let Ok(f) = families() else {
        return String::new();
    };
    let s = &ctx.stats;
    let load = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    for (name, value) in [
        ("connections", load(&s.connections_total)),
        ("connections_refused", load(&s.connections_refused)),
        ("queries", load(&s.queries)),
        ("reads_on_replica", load(&s.reads_on_replica)),
        ("reads_on_primary", load(&s.reads_on_primary)),
        ("writes", load(&s.writes)),
        ("backend_errors", load(&s.backend_errors)),
    ] {
        set_counter(&f.counters, &[name], value);
    }
    f.gauges
        .with_label_values(&["client_connections"])
        .set(ctx.clients.load(Ordering::Relaxed) as i64);
    f.gauges
        .with_label_values(&["sessions"])
        .set(ctx.sessions.len() as i64);
    let topo = ctx.topology.load();
    for b in &topo.backends {
        let (addr, ty) = (b.addr(), b.role.atlas_type());
        let st = &b.runtime.stats;
        for (kind, value) in [
            ("all", load(&st.queries)),
            ("read", load(&st.reads)),
            ("write", load(&st.writes)),
        ] {
            set_counter(&f.backend_counters, &[addr, ty, kind], value);
        }
        let g = |metric: &str, v: i64| {
            f.backend_gauges
                .with_label_values(&[addr, ty, metric])
                .set(v)
        };
        g("up", i64::from(b.state == BackendState::Up));
        // An old primary left out because the new one lacks its writes.
        g("diverged", i64::from(b.reason.starts_with("diverged")));
        g("lag_seconds", b.lag.map_or(-1, |l| l as i64));
        let pools = b.runtime.pools();
        let sum = |pick: &dyn Fn(&crate::backend::Pool) -> usize| {
            pools.iter().map(|p| pick(p)).sum::<usize>() as i64
        };
        g("pool_open", sum(&|p| p.stats.open.load(Ordering::Relaxed)));
        g(
            "pool_in_use",
            sum(&|p| p.stats.in_use.load(Ordering::Relaxed)),
        );
        g("pool_idle", sum(&|p| p.idle_count()));
        g(
            "pool_waiting",
            sum(&|p| p.stats.waiting.load(Ordering::Relaxed)),
        );
    }
    for (mode, counts) in ["read-your-writes", "global"].iter().zip(&s.causal) {
        for (served, c) in ["replica", "replica_after_wait", "primary"]
            .iter()
            .zip(counts)
        {
            set_counter(&f.causal, &[mode, served], load(c));
        }
    }
    for (name, kind) in [
        ("state", EventKind::State),
        ("role", EventKind::Role),
        ("server_changed", EventKind::ServerChanged),
        ("discovered", EventKind::Discovered),
        ("failover", EventKind::Failover),
        ("diverged", EventKind::Diverged),
    ] {
        set_counter(&f.events, &[name], events::count(kind));
    }
    for (kind, outcome, n) in ctx.failovers.counts() {
        set_counter(&f.failovers, &[kind, outcome], n);
    }
    let mut out = Vec::new();
    if TextEncoder::new()
        .encode(&f.registry.gather(), &mut out)
        .is_err()
    {
        return String::new();
    }
    String::from_utf8(out).unwrap_or_default()
}

/// Serves `GET /metrics` until the listener fails.
pub async fn serve(listener: TcpListener, ctx: Arc<Context>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let ctx = ctx.clone();
        tokio::spawn(async move {
            let _ = tokio::time::timeout(Duration::from_secs(5), answer(stream, &ctx)).await;
        });
    }
}

async fn answer(mut stream: TcpStream, ctx: &Context) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < 8192 {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let first = buf.split(|b| *b == b'\n').next().unwrap_or(&[]);
    let (status, body) = if first.starts_with(b"GET /metrics") || first.starts_with(b"GET / ") {
        ("200 OK", render(ctx))
    } else {
        ("404 Not Found", "only /metrics is served\n".to_string())
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body.as_bytes()).await
}
