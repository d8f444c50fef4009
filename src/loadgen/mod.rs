//! `sipreg bench`: a SIP load generator for loopback benchmarks, fast enough to drive
//! sipreg and Kamailio far past what sipp reaches on the same machine.
//!
//! A run is split into lanes ([`lane`]), each a UDP socket or a TCP, TLS or WebSocket
//! connection (or, with a connection per call, a series of them) with its own users, calls and timers on one task, so lanes share nothing while they run. Each
//! lane writes requests from preformatted [`message::Templates`] into reused buffers,
//! matches answers by the Via branch, retransmits on UDP (Timer E) and counts what
//! happened ([`stats`]). [`run`] merges the lanes into a [`report::Report`].
//!
//! - [`plan`]: what a run does (scenario, transport, load model, timers).
//! - [`users`]: users and tokens from `sipreg sipp-users`, or generated names.
//! - [`flow`]: per-scenario steps (401 then Bearer/Digest, dialogs, entity-tags).
//! - [`scan`], [`message`], [`digest`]: reading answers, writing requests, Digest.
//! - [`conn`], [`udp`], [`tcp`], [`tls`], [`ws`], [`inbox`]: the lanes' sockets and
//!   connections (opened by one [`conn::Dialer`] per run) and their receive batches.
//! - [`progress`], [`report`], [`cli`]: the progress line, the table and JSON, the command.
//! - [`rss`]: the server's memory per reporting window (`--server-pid`).

pub mod cli;
pub mod conn;
pub mod digest;
pub mod flow;
pub mod inbox;
pub mod lane;
pub mod message;
pub mod plan;
pub mod progress;
pub mod report;
pub mod rss;
pub mod scan;
pub mod stats;
pub mod tcp;
pub mod tls;
pub mod udp;
pub mod users;
pub mod ws;

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use conn::Dialer;
use lane::{Lane, Phases};
use plan::{Load, Plan};
use progress::Progress;
use report::Report;
use stats::Stats;

/// How many lanes connect at the same time.
const OPENING: usize = 64;

/// A lane that finished opening, or why it could not.
fn joined(
    r: Option<Result<std::io::Result<Lane>, tokio::task::JoinError>>,
    plan: &Plan,
) -> Result<Lane, String> {
    match r {
        Some(Ok(Ok(lane))) => Ok(lane),
        Some(Ok(Err(e))) => Err(format!("cannot open a lane to {}: {e}", plan.target)),
        Some(Err(e)) => Err(format!("opening a lane failed: {e}")),
        None => Err("no lane opened".into()),
    }
}

/// Runs `plan` to the end and reports.
pub async fn run(mut plan: Plan) -> Result<Report, String> {
    plan.validate()?;
    // Every lane needs a user (and, closed loop, a call) of its own.
    plan.lanes = plan.lanes.min(plan.users.len());
    if let Load::Concurrency(c) = plan.load {
        plan.lanes = plan.lanes.min(c);
        // A connection per call: one call in flight per lane.
        if plan.connect.per_call {
            plan.lanes = c.min(plan.users.len());
        }
    }
    let dialer = Arc::new(Dialer::new(&plan)?);
    let plan = Arc::new(plan);
    let lanes = plan.lanes;
    let run_id: u32 = rand::random();
    let progress = Arc::new(Progress::default());
    // Lanes connect a few at a time (a TLS handshake each) before the clock starts.
    let mut opening = tokio::task::JoinSet::new();
    let mut opened = Vec::with_capacity(lanes);
    for i in 0..lanes {
        let share = match plan.load {
            Load::Rate(r) => Load::Rate(r / lanes as f64),
            Load::Concurrency(c) => Load::Concurrency(c / lanes + usize::from(i < c % lanes)),
        };
        let budget = plan
            .max_calls
            .map(|n| n / lanes as u64 + u64::from((i as u64) < n % lanes as u64));
        if opening.len() >= OPENING {
            opened.push(joined(opening.join_next().await, &plan)?);
        }
        opening.spawn(Lane::open(
            i as u32,
            run_id,
            Arc::clone(&plan),
            share,
            budget,
            Arc::clone(&progress),
            Arc::clone(&dialer),
        ));
    }
    while let Some(r) = opening.join_next().await {
        opened.push(joined(Some(r), &plan)?);
    }
    // Sockets and connections are open before the clock starts.
    let start = Instant::now() + Duration::from_millis(20);
    let measure_from = start + plan.warmup;
    let phases = Phases {
        measure_from,
        stop_at: measure_from + plan.duration,
    };
    for lane in &mut opened {
        lane.start(phases, start);
    }
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    let shown = plan.progress.then(|| {
        tokio::spawn(progress::show(
            Arc::clone(&progress),
            plan.warmup + plan.duration,
            done_rx,
        ))
    });
    let (rss_tx, mut rss_rx) = tokio::sync::mpsc::unbounded_channel();
    let sampler = plan.workload.server_pid.map(|pid| {
        tokio::spawn(rss::sample(
            pid,
            measure_from,
            phases.stop_at,
            plan.workload.window,
            rss_tx,
        ))
    });
    tokio::time::sleep_until(start).await;
    let tasks: Vec<_> = opened.into_iter().map(|l| tokio::spawn(l.run())).collect();
    let mut total = Stats::default();
    let mut last_stop = measure_from;
    let mut held = Vec::new();
    for t in tasks {
        let r = t.await.map_err(|e| format!("a lane failed: {e}"))?;
        total.merge(&r.stats);
        last_stop = last_stop.max(r.stopped_sending);
        held.extend(r.io);
    }
    if !plan.connect.hold.is_zero() && plan.proto.is_stream() {
        // Idle connections for a memory measurement: the line tells the script when.
        eprintln!(
            "sipreg bench: holding {} connections for {:.1} s",
            held.len(),
            plan.connect.hold.as_secs_f64()
        );
        tokio::time::sleep(plan.connect.hold).await;
    }
    for io in held {
        io.close().await;
    }
    let _ = done_tx.send(());
    if let Some(h) = shown {
        let _ = h.await;
    }
    let mut rss = Vec::new();
    if let Some(s) = sampler {
        // A run ended early (--requests) takes one last sample now.
        let early = !s.is_finished();
        s.abort();
        while let Ok(kib) = rss_rx.try_recv() {
            rss.push(kib);
        }
        if let Some(pid) = plan.workload.server_pid.filter(|_| early) {
            rss.push(rss::read_kib(pid).unwrap_or(0));
        }
    }
    let window = last_stop.saturating_duration_since(measure_from);
    Ok(Report::new(&plan, &total, window, &rss))
}
