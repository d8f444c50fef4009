//! One lane: a UDP socket or a connection (TCP, TLS, WS, WSS), the users assigned to it,
//! its calls in flight and their timers, driven by one task. Lanes share nothing on the
//! hot path; each returns its own [`Stats`] at the end. With a connection per call, the
//! lane has one call in flight and opens (and afterwards closes) a connection for each.
//!
//! A transaction is identified by its Via branch (run, lane, slot, generation), so an
//! answer finds its slot without a map lookup, and a late answer to an earlier use of
//! the slot is recognised by the generation.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::time::Instant;

use super::conn::{Dialer, Io};
use super::flow::{self, After, Step, UserState};
use super::inbox::Inbox;
use super::message::{Branch, Req, Templates, write_ok};
use super::plan::{Load, Model, Plan, Proto, Scenario};
use super::progress::Progress;
use super::scan::{Start, scan};
use super::stats::Stats;

/// How long a subscribe run keeps listening after its last answer.
const NOTIFY_GRACE: Duration = Duration::from_millis(300);

/// The run's clock: when measuring starts and when sending stops.
#[derive(Debug, Clone, Copy)]
pub struct Phases {
    pub measure_from: Instant,
    pub stop_at: Instant,
}

struct Slot {
    generation: u32,
    active: bool,
    /// Index into the lane's users.
    user: u32,
    step: Step,
    /// When the first copy of the current request left.
    sent_at: Instant,
    /// The next Timer E interval.
    interval: Duration,
    deadline: Instant,
    measured: bool,
    msg: Vec<u8>,
}

/// What a lane reports at the end.
pub struct LaneResult {
    pub stats: Stats,
    /// The end of this lane's measured window.
    pub stopped_sending: Instant,
    /// The persistent connection, still open (for `--hold`).
    pub io: Option<Io>,
}

pub struct Lane {
    id: u32,
    run: u32,
    plan: Arc<Plan>,
    phases: Phases,
    tpl: Templates,
    /// None between calls with a connection per call (or after it was lost).
    io: Option<Io>,
    dialer: Arc<Dialer>,
    /// A connection per call: the one whose call just ended, to close.
    hang_up: Option<Io>,
    /// Global user indices served here are `id + k * lanes`.
    states: Vec<UserState>,
    next_user: usize,
    slots: Vec<Slot>,
    free: Vec<u32>,
    active: usize,
    timers: BinaryHeap<Reverse<(Instant, u32, u32)>>,
    stats: Stats,
    progress: Arc<Progress>,
    /// Closed loop: calls kept in flight. Open loop: the gap between calls.
    concurrency: usize,
    interval: Option<Duration>,
    next_send: Instant,
    /// Measured calls this lane may start.
    budget: Option<u64>,
    /// First-sighting: every token of the lane's users was sent.
    spent: bool,
    out: Vec<u8>,
    auth: String,
}

impl Lane {
    /// Opens the lane's socket or connection. `share` is this lane's part of the load
    /// (rate or concurrency) and `budget` its part of `--requests`.
    #[allow(clippy::too_many_arguments)]
    pub async fn open(
        id: u32,
        run: u32,
        plan: Arc<Plan>,
        share: Load,
        budget: Option<u64>,
        progress: Arc<Progress>,
        dialer: Arc<Dialer>,
    ) -> std::io::Result<Lane> {
        // A connection per call is opened when its call starts.
        let (io, local) = if plan.connect.per_call {
            (None, SocketAddr::from(([127, 0, 0, 1], 0)))
        } else {
            let (io, opened) = dialer.open(id).await?;
            (Some(io), opened.local)
        };
        let tpl = templates(&plan, local, run);
        let lanes = plan.lanes;
        let users = plan.users.len();
        let mine = users / lanes + usize::from((id as usize) < users % lanes);
        let (concurrency, interval) = match share {
            Load::Concurrency(c) => (c, None),
            Load::Rate(r) => (usize::MAX, Some(Duration::from_secs_f64(1.0 / r))),
        };
        Ok(Lane {
            id,
            run,
            tpl,
            io,
            dialer,
            hang_up: None,
            states: (0..mine)
                .map(|k| flow::initial_state(&plan.workload, id as usize + k * lanes))
                .collect(),
            next_user: 0,
            slots: Vec::new(),
            free: Vec::new(),
            active: 0,
            timers: BinaryHeap::new(),
            stats: Stats::default(),
            progress,
            concurrency,
            interval,
            // Set by `start`, once every lane is open.
            phases: Phases {
                measure_from: Instant::now(),
                stop_at: Instant::now(),
            },
            next_send: Instant::now(),
            budget,
            spent: false,
            out: Vec::with_capacity(2048),
            auth: String::new(),
            plan,
        })
    }

    /// Sets the run's clock: sending starts at `start`.
    pub fn start(&mut self, phases: Phases, start: Instant) {
        self.phases = phases;
        // Lanes start a little apart so their sends interleave instead of bursting.
        self.next_send = start
            + self.interval.map_or(Duration::ZERO, |i| {
                i.mul_f64(f64::from(self.id) / self.plan.lanes as f64)
            });
    }

    /// A connection per call: opens the call's connection (counted when measured) and
    /// writes the lane's Via and Contact for its address.
    async fn dial(&mut self, measured: bool) {
        match self.dialer.open(self.id).await {
            Ok((io, opened)) => {
                if measured {
                    self.stats.connected(opened.took, opened.resumed);
                }
                self.tpl = templates(&self.plan, opened.local, self.run);
                self.io = Some(io);
            }
            Err(e) => {
                if measured {
                    self.stats.connect_errors += 1;
                }
                // One line for the run, not one per failed call.
                if self.progress.connect_errors.fetch_add(1, Ordering::Relaxed) == 0 {
                    eprintln!("sipreg bench: cannot connect to {}: {e}", self.plan.target);
                }
            }
        }
    }

    /// Sends on the lane's connection; false when it failed or there is none.
    async fn send_bytes(&mut self, msg: &[u8]) -> bool {
        match self.io.as_mut() {
            Some(io) => io.send(msg).await.is_ok(),
            None => false,
        }
    }

    fn global(&self, k: usize) -> usize {
        self.id as usize + k * self.plan.lanes
    }

    fn sending(&self, now: Instant) -> bool {
        now < self.phases.stop_at && self.budget != Some(0) && !self.spent
    }

    pub async fn run(mut self) -> LaneResult {
        let mut inbox = Inbox::default();
        let mut stopped_sending = None;
        let mut linger: Option<Instant> = None;
        loop {
            // A connection per call: the last call's connection goes before the next dials.
            if let Some(io) = self.hang_up.take() {
                io.close().await;
            }
            let now = Instant::now();
            // Timers first: a timeout frees a call that the closed loop replaces at once.
            self.fire_timers(now).await;
            let sending = self.sending(now);
            if sending {
                self.send_due(now).await;
            } else if stopped_sending.is_none() {
                stopped_sending = Some(now);
            }
            if !self.sending(now) && self.active == 0 {
                // A subscription's NOTIFY follows its 2xx: listen a little longer for the
                // last ones so they are counted and answered.
                match linger {
                    None if self.plan.scenario == Scenario::Subscribe => {
                        linger = Some(now + NOTIFY_GRACE);
                    }
                    Some(until) if now < until => {}
                    _ => break,
                }
            }
            let mut wake = self.timers.peek().map(|t| t.0.0);
            if let Some(until) = linger {
                wake = Some(wake.map_or(until, |w| w.min(until)));
            }
            if self.sending(now) {
                let next = match self.interval {
                    Some(_) => self.next_send.min(self.phases.stop_at),
                    None => self.phases.stop_at,
                };
                wake = Some(wake.map_or(next, |w| w.min(next)));
            }
            let Some(wake) = wake else { break };
            tokio::select! {
                r = async {
                    match self.io.as_mut() {
                        Some(io) => io.recv(&mut inbox).await,
                        None => std::future::pending().await,
                    }
                } => {
                    // UDP: an ICMP error (nothing listening) surfaces here; keep going.
                    if let Err(e) = r && self.plan.proto.is_stream() {
                        tracing::warn!(lane = self.id, error = %e, "connection lost");
                        self.io = None;
                        // A connection per call: that call times out, the next one dials.
                        if !self.plan.connect.per_call {
                            break;
                        }
                        continue;
                    }
                    let now = Instant::now();
                    for i in 0..inbox.len() {
                        self.on_message(inbox.get(i), now).await;
                    }
                    inbox.clear();
                }
                _ = tokio::time::sleep_until(wake) => {}
            }
        }
        // Whatever is still in flight (a lost connection) never got an answer.
        let left = self.slots.iter().filter(|s| s.active && s.measured).count() as u64;
        self.stats.timeouts += left;
        // A run cut short by --requests ends when its last answer is in; one ended by
        // the clock ends when sending stopped.
        let now = Instant::now();
        let stopped = match stopped_sending {
            Some(t) if self.budget == Some(0) || self.spent => now.max(t),
            Some(t) => t,
            None => now,
        };
        if let Some(io) = self.hang_up.take() {
            io.close().await;
        }
        LaneResult {
            stats: self.stats,
            stopped_sending: stopped,
            io: self.io,
        }
    }

    async fn send_due(&mut self, now: Instant) {
        match self.interval {
            None => {
                while self.active < self.concurrency && self.sending(now) {
                    if !self.start_call(now).await {
                        break;
                    }
                }
            }
            Some(gap) => {
                while self.next_send <= now && self.sending(now) {
                    let started = self.start_call(now).await;
                    if !started && !self.spent && now >= self.phases.measure_from {
                        self.stats.skipped += 1;
                    }
                    self.next_send += match self.plan.workload.model {
                        // Exponential gaps (a Poisson process): each user's interval
                        // varies around the mean, as phones' timers drift apart.
                        Model::Fleet => {
                            // 0 - ln(u) ≥ +0 (a negative zero would not convert); capped.
                            gap.mul_f64((0.0 - (1.0 - rand::random::<f64>()).ln()).min(50.0))
                        }
                        _ => gap,
                    };
                }
            }
        }
    }

    /// Starts a call for the next idle user; false when every user is busy.
    async fn start_call(&mut self, now: Instant) -> bool {
        let n = self.states.len();
        let plan = Arc::clone(&self.plan);
        let Some(k) = (0..n).map(|i| (self.next_user + i) % n).find(|&k| {
            flow::can_start(&plan.workload, &plan.users[self.global(k)], &self.states[k])
        }) else {
            // First-sighting: once every token was sent, the lane is done.
            self.spent = plan.workload.model == Model::FirstSighting
                && (0..n)
                    .all(|k| self.states[k].uses as usize >= plan.users[self.global(k)].tokens());
            return false;
        };
        self.next_user = (k + 1) % n;
        let measured = now >= self.phases.measure_from;
        if measured && let Some(b) = self.budget.as_mut() {
            *b = b.saturating_sub(1);
        }
        let st = &mut self.states[k];
        st.busy = true;
        flow::pick_token(
            &plan.workload,
            &plan.users[self.id as usize + k * plan.lanes],
            st,
        );
        let step = flow::first_step(plan.scenario, plan.workload.fresh_nonce, st);
        let slot = match self.free.pop() {
            Some(s) => s,
            None => {
                self.slots.push(Slot {
                    generation: 0,
                    active: false,
                    user: 0,
                    step,
                    sent_at: now,
                    interval: self.plan.t1,
                    deadline: now,
                    measured,
                    msg: Vec::with_capacity(1024),
                });
                (self.slots.len() - 1) as u32
            }
        };
        let s = &mut self.slots[slot as usize];
        s.active = true;
        s.user = k as u32;
        s.measured = measured;
        self.active += 1;
        if self.plan.connect.per_call && self.io.is_none() {
            self.dial(measured).await;
        }
        self.send_step(slot, step, now).await;
        true
    }

    /// Writes and sends the request of `step` as a new transaction on `slot`.
    async fn send_step(&mut self, slot: u32, step: Step, now: Instant) {
        let plan = Arc::clone(&self.plan);
        let s = &mut self.slots[slot as usize];
        s.generation = s.generation.wrapping_add(1);
        s.step = step;
        let k = s.user as usize;
        let g = self.id as usize + k * plan.lanes;
        let user = &plan.users[g];
        let to_user = match plan.scenario {
            Scenario::Subscribe => &plan.users[(g + 1) % plan.users.len()].name,
            _ => &user.name,
        };
        let st = &mut self.states[k];
        st.cseq = st.cseq.wrapping_add(1);
        // Only Digest needs a client nonce; other scenarios skip the allocation.
        let cnonce = if plan.scenario == Scenario::RegisterDigest {
            format!("{:x}{:x}", self.run, st.cseq)
        } else {
            String::new()
        };
        let auth = flow::auth(
            plan.scenario,
            step,
            plan.auth,
            user,
            st,
            (self.tpl.register_uri(), &cnonce),
            &mut self.auth,
        );
        let req = Req {
            kind: flow::kind(plan.scenario),
            branch: Branch {
                run: self.run,
                lane: self.id,
                slot,
                generation: s.generation,
            },
            user: &user.name,
            user_id: g as u64,
            to_user,
            to_tag: st.to_tag.as_deref(),
            cseq: st.cseq,
            auth,
            etag: st.etag.as_deref(),
        };
        self.tpl.write(&mut s.msg, &req);
        s.sent_at = now;
        s.interval = plan.t1;
        s.deadline = now + plan.timeout;
        let first = match plan.proto {
            Proto::Udp => (now + plan.t1).min(s.deadline),
            _ => s.deadline,
        };
        self.timers.push(Reverse((first, slot, s.generation)));
        self.progress.sent.fetch_add(1, Ordering::Relaxed);
        if s.measured {
            self.stats.sent += 1;
        }
        let msg = std::mem::take(&mut s.msg);
        if !self.send_bytes(&msg).await {
            self.stats.send_errors += 1;
        }
        self.slots[slot as usize].msg = msg;
    }

    async fn fire_timers(&mut self, now: Instant) {
        while let Some(&Reverse((at, slot, generation))) = self.timers.peek() {
            if at > now {
                break;
            }
            self.timers.pop();
            let Some(s) = self.slots.get_mut(slot as usize) else {
                continue;
            };
            if !s.active || s.generation != generation {
                continue;
            }
            if now >= s.deadline {
                self.progress.timeouts.fetch_add(1, Ordering::Relaxed);
                if s.measured {
                    self.stats.timeouts += 1;
                }
                self.finish(slot);
                continue;
            }
            // Timer E (RFC 3261 §17.1.2.2): resend, double the interval up to T2.
            self.progress
                .retransmissions
                .fetch_add(1, Ordering::Relaxed);
            if s.measured {
                self.stats.retransmissions += 1;
            }
            // Copies leave at T1, 3·T1, 7·T1, ... (each gap doubled, capped at T2).
            s.interval = (s.interval * 2).min(self.plan.t2);
            let next = (now + s.interval).min(s.deadline);
            self.timers.push(Reverse((next, slot, generation)));
            let msg = std::mem::take(&mut s.msg);
            if !self.send_bytes(&msg).await {
                self.stats.send_errors += 1;
            }
            self.slots[slot as usize].msg = msg;
        }
    }

    fn finish(&mut self, slot: u32) {
        let s = &mut self.slots[slot as usize];
        s.active = false;
        s.generation = s.generation.wrapping_add(1);
        self.states[s.user as usize].busy = false;
        self.free.push(slot);
        self.active -= 1;
        if self.plan.connect.per_call {
            // Closed in the run loop (closing is async); the next call dials anew.
            self.hang_up = self.io.take();
        }
    }

    async fn on_message(&mut self, data: &[u8], now: Instant) {
        let counted = now >= self.phases.measure_from;
        let Some(msg) = scan(data) else {
            if counted {
                self.stats.unmatched += 1;
            }
            return;
        };
        let code = match msg.start {
            Start::Response(code) => code,
            Start::Request(method) => {
                if method == "NOTIFY" {
                    if counted {
                        self.stats.notify_received += 1;
                    }
                    write_ok(&mut self.out, &msg);
                    let out = std::mem::take(&mut self.out);
                    let sent = self.send_bytes(&out).await;
                    self.out = out;
                    if sent && counted {
                        self.stats.notify_answered += 1;
                    }
                } else if counted {
                    self.stats.unmatched += 1;
                }
                return;
            }
        };
        let found = msg
            .branch()
            .and_then(Branch::parse)
            .filter(|b| b.run == self.run && b.lane == self.id)
            .and_then(|b| {
                let s = self.slots.get(b.slot as usize)?;
                (s.active && s.generation == b.generation).then_some(b.slot)
            });
        let Some(slot) = found else {
            if counted {
                self.stats.unmatched += 1;
            }
            return;
        };
        let s = &mut self.slots[slot as usize];
        if code < 200 {
            // A provisional answer: the request arrived, retransmit at T2 from now on.
            s.interval = self.plan.t2;
            if s.measured {
                self.stats.provisional += 1;
            }
            return;
        }
        self.progress.answered.fetch_add(1, Ordering::Relaxed);
        if s.measured {
            let took = now - s.sent_at;
            self.stats.answered(code, took, self.plan.sla);
            // A window counts registrations: a 401 asked for on purpose is not one.
            if !(s.step == Step::Challenge && code == 401) {
                let window = now
                    .saturating_duration_since(self.phases.measure_from)
                    .as_secs_f64()
                    / self.plan.workload.window.as_secs_f64();
                self.stats
                    .in_window(window as usize, code, took, self.plan.sla);
            }
        }
        let (k, step) = (s.user as usize, s.step);
        if s.measured && step == Step::Challenge && code == 401 {
            self.stats.challenges += 1;
        }
        let g = self.global(k);
        let plan = Arc::clone(&self.plan);
        match flow::on_final(
            plan.scenario,
            step,
            code,
            &msg,
            &plan.users[g],
            &mut self.states[k],
        ) {
            After::Next(next) => self.send_step(slot, next, now).await,
            After::Done => self.finish(slot),
            After::Unusable => {
                if self.slots[slot as usize].measured {
                    self.stats.unusable_challenges += 1;
                }
                self.finish(slot);
            }
        }
    }
}

/// The lane's fixed request parts for a socket or connection bound to `local`.
fn templates(plan: &Plan, local: SocketAddr, run: u32) -> Templates {
    Templates::new(
        plan.proto,
        &local.to_string(),
        &plan.target_hostport(),
        &plan.domain,
        run,
        plan.expires,
    )
}
