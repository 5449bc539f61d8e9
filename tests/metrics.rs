//! The Prometheus endpoint reflects what the proxy did.

mod common;

use common::{scrape, shared_topology, Gantry};

fn value(text: &str, line_start: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(line_start))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no metric line starting {line_start:?} in:\n{text}"))
}

#[test]
fn metrics_count_queries_and_show_backend_state() {
    let t = shared_topology();
    let port = common::free_port();
    let g = Gantry::start(t, &["--metrics-address", &format!("127.0.0.1:{port}")]);
    let out = g.mariadb(&["test", "-e", "SELECT 1; SELECT 2; SELECT 3"]);
    assert!(out.status.success());
    let text = scrape(port, "/metrics");
    assert!(text.starts_with("HTTP/1.1 200 OK"), "{text}");
    assert!(value(&text, "gantry_events_total{counter=\"queries\"}") >= 3.0);
    assert!(value(&text, "gantry_events_total{counter=\"reads_on_replica\"}") >= 3.0);
    for r in &t.replicas {
        let up = format!(
            "gantry_backend{{address=\"{}\",metric=\"up\",type=\"ro\"}}",
            r.addr()
        );
        assert_eq!(value(&text, &up), 1.0, "{text}");
    }
    assert!(text.contains("gantry_causal_reads_total"), "{text}");
    assert!(scrape(port, "/nope").starts_with("HTTP/1.1 404"));
}
