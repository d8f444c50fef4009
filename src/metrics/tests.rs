//! The dashboard shipped in `docs/` against what a scrape shows.

use super::*;

/// Scrapes publish the snapshot into the process-wide recorder: one test at a time.
static SCRAPE: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn scrape(handle: &PrometheusHandle, snap: &Snapshot) -> String {
    let _one = SCRAPE.lock().unwrap_or_else(|p| p.into_inner());
    render(handle, snap)
}

const DASHBOARD: &str = include_str!("../../docs/grafana-dashboard.json");

/// Every `sipreg_*` name in a PromQL expression.
fn metric_names(expr: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = expr;
    while let Some(i) = rest.find("sipreg_") {
        let tail = &rest[i..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        out.push(tail[..end].to_string());
        rest = &tail[end..];
    }
    out
}

fn exprs(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, v) in m {
                match (k.as_str(), v) {
                    ("expr", serde_json::Value::String(e)) => out.push(e.clone()),
                    _ => exprs(v, out),
                }
            }
        }
        serde_json::Value::Array(a) => a.iter().for_each(|v| exprs(v, out)),
        _ => {}
    }
}

#[test]
fn dashboard_parses_and_names_only_rendered_metrics() {
    let dash: serde_json::Value = serde_json::from_str(DASHBOARD).expect("dashboard is JSON");
    assert!(dash["title"].is_string(), "a Grafana dashboard has a title");
    assert!(
        dash["panels"].as_array().is_some_and(|p| !p.is_empty()),
        "panels"
    );
    let mut all = Vec::new();
    exprs(&dash, &mut all);
    assert!(!all.is_empty(), "the dashboard queries something");

    let handle = install().expect("the recorder installs in the test process");
    // The labelled series appear with their first event.
    sip_request("REGISTER", 200, "udp");
    auth("bearer", "invalid");
    let text = scrape(&handle, &Snapshot::default());
    for expr in &all {
        let names = metric_names(expr);
        assert!(!names.is_empty(), "{expr} names no sipreg metric");
        for name in names {
            assert!(
                names::ALL.iter().any(|(n, _, _)| *n == name),
                "{name} (in {expr}) is not a sipreg metric"
            );
            assert!(
                text.lines()
                    .any(|l| l.starts_with(&format!("{name}{{"))
                        || l.starts_with(&format!("{name} "))),
                "{name} (in {expr}) is not in the render:\n{text}"
            );
        }
    }
}

#[test]
fn every_metric_is_described_and_named_by_convention() {
    let handle = install().expect("recorder");
    sip_request("OPTIONS", 200, "tcp");
    auth("none", "challenge");
    let text = scrape(&handle, &Snapshot::default());
    for (name, kind, _) in names::ALL {
        assert!(name.starts_with("sipreg_"), "{name}");
        assert_eq!(
            name.ends_with("_total"),
            *kind == names::Kind::Counter,
            "{name}: counters and only counters end in _total"
        );
        assert!(
            text.contains(&format!("# HELP {name} ")),
            "{name} has no description in:\n{text}"
        );
    }
}

#[test]
fn scraped_values_are_published() {
    let handle = install().expect("recorder");
    let snap = Snapshot {
        bindings: 7,
        write_behind_depth: 3,
        connections: [0, 2, 1, 0, 0],
        ..Snapshot::default()
    };
    let text = scrape(&handle, &snap);
    assert!(text.contains("\nsipreg_bindings 7\n"), "{text}");
    assert!(
        text.contains("\nsipreg_write_behind_queue_depth 3\n"),
        "{text}"
    );
    assert!(
        text.contains("sipreg_connections{transport=\"tcp\"} 2\n"),
        "{text}"
    );
}

#[test]
fn transport_labels_follow_the_transport_index() {
    for t in crate::transport::Transport::ALL {
        assert_eq!(TRANSPORTS[t.index()], t.as_str());
    }
}
