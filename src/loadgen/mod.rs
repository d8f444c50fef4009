//! `sipreg bench`: a SIP load generator for loopback benchmarks, fast enough to drive
//! sipreg and Kamailio far past what sipp reaches on the same machine.
//!
//! A run is split into lanes ([`lane`]), each a UDP socket or TCP connection with its
//! own users, calls and timers on one task, so lanes share nothing while they run. Each
//! lane writes requests from preformatted [`message::Templates`] into reused buffers,
//! matches answers by the Via branch, retransmits on UDP (Timer E) and counts what
//! happened ([`stats`]). [`run`] merges the lanes into a [`report::Report`].
//!
//! - [`plan`]: what a run does (scenario, transport, load model, timers).
//! - [`users`]: users and tokens from `sipreg sipp-users`, or generated names.
//! - [`flow`]: per-scenario steps (401 then Bearer/Digest, dialogs, entity-tags).
//! - [`scan`], [`message`], [`digest`]: reading answers, writing requests, Digest.
//! - [`udp`], [`tcp`], [`inbox`]: the lanes' sockets and their receive batches.
//! - [`progress`], [`report`], [`cli`]: the progress line, the table and JSON, the command.

pub mod cli;
pub mod digest;
pub mod flow;
pub mod inbox;
pub mod lane;
pub mod message;
pub mod plan;
pub mod progress;
pub mod report;
pub mod scan;
pub mod stats;
pub mod tcp;
pub mod udp;
pub mod users;

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use lane::{Lane, Phases};
use plan::{Load, Plan};
use progress::Progress;
use report::Report;
use stats::Stats;

/// Runs `plan` to the end and reports.
pub async fn run(mut plan: Plan) -> Result<Report, String> {
    plan.validate()?;
    // Every lane needs a user (and, closed loop, a call) of its own.
    plan.lanes = plan.lanes.min(plan.users.len());
    if let Load::Concurrency(c) = plan.load {
        plan.lanes = plan.lanes.min(c);
    }
    let plan = Arc::new(plan);
    let lanes = plan.lanes;
    let run_id: u32 = rand::random();
    let progress = Arc::new(Progress::default());
    // Sockets and connections are opened before the clock starts.
    let start = Instant::now() + Duration::from_millis(20);
    let measure_from = start + plan.warmup;
    let phases = Phases {
        measure_from,
        stop_at: measure_from + plan.duration,
    };
    let mut opened = Vec::with_capacity(lanes);
    for i in 0..lanes {
        let share = match plan.load {
            Load::Rate(r) => Load::Rate(r / lanes as f64),
            Load::Concurrency(c) => Load::Concurrency(c / lanes + usize::from(i < c % lanes)),
        };
        let budget = plan
            .max_calls
            .map(|n| n / lanes as u64 + u64::from((i as u64) < n % lanes as u64));
        let lane = Lane::open(
            i as u32,
            run_id,
            Arc::clone(&plan),
            phases,
            share,
            budget,
            Arc::clone(&progress),
            start,
        )
        .await
        .map_err(|e| format!("cannot open lane {i} to {}: {e}", plan.target))?;
        opened.push(lane);
    }
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    let shown = plan.progress.then(|| {
        tokio::spawn(progress::show(
            Arc::clone(&progress),
            plan.warmup + plan.duration,
            done_rx,
        ))
    });
    tokio::time::sleep_until(start).await;
    let tasks: Vec<_> = opened.into_iter().map(|l| tokio::spawn(l.run())).collect();
    let mut total = Stats::default();
    let mut last_stop = measure_from;
    for t in tasks {
        let r = t.await.map_err(|e| format!("a lane failed: {e}"))?;
        total.merge(&r.stats);
        last_stop = last_stop.max(r.stopped_sending);
    }
    let _ = done_tx.send(());
    if let Some(h) = shown {
        let _ = h.await;
    }
    let window = last_stop.saturating_duration_since(measure_from);
    Ok(Report::new(&plan, &total, window))
}
