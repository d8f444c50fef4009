//! Store outages, end to end over real sockets: nothing answered 200 is ever missing from
//! the store once it is back, and nothing refused is in memory.
//!
//! The fault is the one an operator meets with SQLite: another connection holding the
//! database locked (`BEGIN EXCLUSIVE`, as an `sqlite3` session left open would), so
//! sipreg's writes fail with SQLITE_BUSY once its busy timeout (5 s) runs out. Making the
//! file read-only would not do: tests may run as root, whom `chmod` does not stop.
//! Reads still work under the lock (the store runs in WAL mode), so the tests compare the
//! rows with what was answered while the fault is on.

mod common;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;

use common::clients::registrations;
use common::*;
use sipreg::registrar::Persistence;
use sipreg::sip::Message;
use sipreg::sip::headers::HeaderName;
use sqlx::Connection;
use tokio::net::UdpSocket;

/// Longer than sipreg's busy timeout, so a REGISTER stuck behind the lock is answered.
const ANSWER: Duration = Duration::from_secs(30);
/// How long the store may take to catch up once the fault ends (a retry pause of at most
/// 5 s, plus an attempt that may still be waiting on the lock).
const CATCH_UP: Duration = Duration::from_secs(60);

/// A REGISTER for `user@example.com` with the given Contact header values.
fn register(user: &str, call_id: &str, cseq: u32, contacts: &[&str]) -> String {
    let mut c = String::new();
    for x in contacts {
        c.push_str(&format!("Contact: {x}\r\n"));
    }
    format!(
        "REGISTER sip:example.com SIP/2.0\r\n\
         Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK{call_id}x{cseq};rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:{user}@example.com>;tag=t{call_id}\r\n\
         To: <sip:{user}@example.com>\r\n\
         Call-ID: {call_id}\r\n\
         CSeq: {cseq} REGISTER\r\n\
         {c}Content-Length: 0\r\n\r\n"
    )
}

/// Sends a request over UDP and waits for its final answer.
async fn send(server: SocketAddr, msg: &str) -> Message {
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    sock.send_to(msg.as_bytes(), server).await.unwrap();
    let mut buf = vec![0u8; 65_535];
    loop {
        let (n, _) = tokio::time::timeout(ANSWER, sock.recv_from(&mut buf))
            .await
            .expect("an answer")
            .unwrap();
        let m = parse(&bytes::Bytes::copy_from_slice(&buf[..n]));
        if status(&m) >= 200 {
            return m;
        }
    }
}

fn contacts(m: &Message) -> String {
    m.headers
        .all(HeaderName::Contact)
        .map(|h| h.value.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

fn retry_after(m: &Message) -> Option<String> {
    m.headers.other("Retry-After").map(str::to_string)
}

/// Another connection holding the database's write lock until released or dropped.
struct Lock(Option<sqlx::SqliteConnection>);

impl Lock {
    async fn take(app: &AppServer) -> Lock {
        let url = format!("sqlite://{}/sipreg.db", app.dir.path().display());
        let mut c = sqlx::SqliteConnection::connect(&url)
            .await
            .expect("second connection");
        sqlx::raw_sql("BEGIN EXCLUSIVE")
            .execute(&mut c)
            .await
            .expect("lock the database");
        Lock(Some(c))
    }

    async fn release(mut self) {
        if let Some(mut c) = self.0.take() {
            sqlx::raw_sql("ROLLBACK")
                .execute(&mut c)
                .await
                .expect("unlock");
            c.close().await.expect("close");
        }
    }
}

/// The stored bindings as `(aor, contact)`, read while the lock may be held.
async fn rows(app: &AppServer) -> BTreeSet<(String, String)> {
    sipreg::registrar::persist::list(app.users.store().pool(), 0)
        .await
        .expect("read the bindings table")
        .into_iter()
        .map(|(aor, b)| (aor.to_string(), b.uri.to_string()))
        .collect()
}

/// The bindings the admin API lists, as `(aor, contact)`.
async fn listed(app: &AppServer, admin: &str) -> BTreeSet<(String, String)> {
    registrations(app, admin)
        .await
        .into_iter()
        .map(|b| (b.aor, b.contact))
        .collect()
}

fn pair(user: &str, contact: &str) -> (String, String) {
    (format!("sip:{user}@example.com"), contact.to_string())
}

/// Polls until the stored rows equal `want` (or [`CATCH_UP`] passes); returns the rows.
async fn rows_become(
    app: &AppServer,
    want: &BTreeSet<(String, String)>,
) -> BTreeSet<(String, String)> {
    let deadline = tokio::time::Instant::now() + CATCH_UP;
    loop {
        let now = rows(app).await;
        if &now == want || tokio::time::Instant::now() >= deadline {
            return now;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Waits (at most [`CATCH_UP`]) for the write-behind queue to empty, and says it did.
async fn queue_drains(p: &sipreg::registrar::persist::Persister) {
    let deadline = tokio::time::Instant::now() + CATCH_UP;
    while p.queue_depth() > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(p.queue_depth(), 0, "everything queued was written");
}

/// An admin's token for `GET /registrations` (made before any fault: it writes).
async fn admin_token(app: &AppServer) -> String {
    let root = add_user(&app.users, "root", &["admin"]).await;
    app.users
        .issue_token(&root, None, None)
        .unwrap()
        .access_token
}

async fn start(persistence: Persistence, bound: usize) -> AppServer {
    AppServer::start(|c| {
        // The faults are SQLite's file lock: SQLite on every pass, PostgreSQL's too.
        if let Some(dir) = c.tokens.key_dir.parent() {
            c.database.url = common::testdb::sqlite_url(dir);
        }
        c.auth.required = false;
        c.registrar.persistence = persistence;
        c.registrar.write_behind_max = bound;
        c.registrar.retry_after_secs = 17;
        c.registrar.max_contacts = 40;
    })
    .await
}

#[tokio::test]
async fn sync_mode_answers_503_on_a_store_failure_and_changes_nothing() {
    let app = start(Persistence::Sync, 100_000).await;
    let admin = admin_token(&app).await;
    let a = "sip:s@192.0.2.1";
    let b = "sip:s@192.0.2.2";
    let m = send(app.sip, &register("s", "c1", 1, &[&format!("<{a}>")])).await;
    assert_eq!(status(&m), 200);
    let before: BTreeSet<_> = [pair("s", a)].into();
    assert_eq!(rows(&app).await, before);

    let lock = Lock::take(&app).await;
    // Adds one binding and removes the other: neither may happen.
    let change = |cseq| {
        register(
            "s",
            "c1",
            cseq,
            &[&format!("<{b}>"), &format!("<{a}>;expires=0")],
        )
    };
    let m = send(app.sip, &change(2)).await;
    assert_eq!(status(&m), 503, "{}", m.first_line);
    assert_eq!(retry_after(&m).as_deref(), Some("17"));
    assert_eq!(listed(&app, &admin).await, before, "memory unchanged");
    assert_eq!(rows(&app).await, before, "store unchanged");
    // A fetch needs no write: still answered, with the binding as it was.
    let m = send(app.sip, &register("s", "f1", 1, &[])).await;
    assert_eq!(status(&m), 200);
    assert!(contacts(&m).contains(a) && !contacts(&m).contains(b));
    let p = app.registrar.persister().expect("a store");
    assert_eq!(p.refused(), 1);
    assert!(p.write_failures() >= 1);
    lock.release().await;

    // The client retries (a new CSeq, as after a 503): now it is stored and answered.
    let m = send(app.sip, &change(3)).await;
    assert_eq!(status(&m), 200);
    let after: BTreeSet<_> = [pair("s", b)].into();
    assert_eq!(rows(&app).await, after, "stored before the 200");
    assert_eq!(listed(&app, &admin).await, after);
    assert_eq!(p.dropped(), 0);
}

#[tokio::test]
async fn sync_mode_concurrent_registers_of_one_aor_keep_memory_and_store_equal() {
    let app = start(Persistence::Sync, 100_000).await;
    let admin = admin_token(&app).await;
    // Twenty devices of one AOR at once, each on its own Call-ID; half of them then
    // unregister while the other half refresh, all concurrently.
    let round = |cseq: u32, remove_odd: bool| {
        let server = app.sip;
        async move {
            let sends = (0..20).map(|i| {
                let contact = if remove_odd && i % 2 == 1 {
                    format!("<sip:m@192.0.2.{}>;expires=0", 10 + i)
                } else {
                    format!("<sip:m@192.0.2.{}>", 10 + i)
                };
                let msg = register("m", &format!("d{i}"), cseq, &[&contact]);
                async move { status(&send(server, &msg).await) }
            });
            futures_util::future::join_all(sends).await
        }
    };
    let answers = round(1, false).await;
    assert!(answers.iter().all(|s| *s == 200), "{answers:?}");
    let answers = round(2, true).await;
    assert!(answers.iter().all(|s| *s == 200), "{answers:?}");
    let want: BTreeSet<_> = (0..20)
        .filter(|i| i % 2 == 0)
        .map(|i| pair("m", &format!("sip:m@192.0.2.{}", 10 + i)))
        .collect();
    assert_eq!(listed(&app, &admin).await, want);
    assert_eq!(rows(&app).await, want);
    // Twenty clients refreshing one and the same contact at once, each with its own
    // Call-ID: whichever is installed last must be the one stored last.
    let server = app.sip;
    let sends = (0..20).map(|i| {
        let msg = register("m", &format!("same{i}"), 1, &["<sip:m@192.0.2.10>"]);
        async move { status(&send(server, &msg).await) }
    });
    let answers = futures_util::future::join_all(sends).await;
    assert!(answers.iter().all(|s| *s == 200), "{answers:?}");
    let aor = sipreg::registrar::Aor::parse("sip:m@example.com").unwrap();
    let in_memory: BTreeSet<(String, String)> = app
        .registrar
        .table
        .get(&aor, 0)
        .into_iter()
        .map(|b| (b.uri.to_string(), b.call_id.to_string()))
        .collect();
    let stored: BTreeSet<(String, String)> =
        sipreg::registrar::persist::list(app.users.store().pool(), 0)
            .await
            .unwrap()
            .into_iter()
            .map(|(_, b)| (b.uri.to_string(), b.call_id.to_string()))
            .collect();
    assert_eq!(
        in_memory, stored,
        "memory and store agree on every binding's state"
    );
}

#[tokio::test]
async fn write_behind_keeps_everything_answered_200_through_an_outage() {
    let app = start(Persistence::WriteBehind, 100_000).await;
    let admin = admin_token(&app).await;
    let p = app.registrar.persister().expect("a store");
    // One binding stored before the outage, removed during it.
    let m = send(
        app.sip,
        &register("gone", "g", 1, &["<sip:gone@192.0.2.99>"]),
    )
    .await;
    assert_eq!(status(&m), 200);
    let before: BTreeSet<_> = [pair("gone", "sip:gone@192.0.2.99")].into();
    assert_eq!(rows_become(&app, &before).await, before);
    queue_drains(p).await;

    let lock = Lock::take(&app).await;
    let mut answered = BTreeSet::new();
    for i in 0..30 {
        let user = format!("w{i}");
        let contact = format!("sip:{user}@192.0.2.{}", i + 1);
        // Registered, then refreshed four times: one queue slot.
        for cseq in 1..=5 {
            let m = send(
                app.sip,
                &register(&user, &user, cseq, &[&format!("<{contact}>")]),
            )
            .await;
            assert_eq!(status(&m), 200, "write-behind answers during the outage");
        }
        answered.insert(pair(&user, &contact));
    }
    let m = send(
        app.sip,
        &register("gone", "g", 2, &["<sip:gone@192.0.2.99>;expires=0"]),
    )
    .await;
    assert_eq!(status(&m), 200);
    assert_eq!(listed(&app, &admin).await, answered);
    // Each binding waits in one slot, however often it changed.
    assert_eq!(p.queue_depth(), 31);
    // The writer has failed at least once, and kept everything.
    let deadline = tokio::time::Instant::now() + ANSWER;
    while p.write_failures() == 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(p.write_failures() >= 1, "the store was unreachable");
    assert_eq!(p.queue_depth(), 31, "nothing given up after failed writes");
    assert!(
        rows(&app)
            .await
            .contains(&pair("gone", "sip:gone@192.0.2.99"))
    );
    lock.release().await;

    assert_eq!(
        rows_become(&app, &answered).await,
        answered,
        "every 200 is stored"
    );
    assert_eq!(p.dropped(), 0);
    assert_eq!(p.refused(), 0);
    queue_drains(p).await;
}

#[tokio::test]
async fn write_behind_full_queue_refuses_with_503_and_loses_nothing_answered_200() {
    let app = start(Persistence::WriteBehind, 5).await;
    let admin = admin_token(&app).await;
    let p = app.registrar.persister().expect("a store");
    let contact = |i: usize| format!("sip:q{i}@192.0.2.{}", i + 1);

    let lock = Lock::take(&app).await;
    let mut answered = BTreeSet::new();
    let mut refused = 0;
    for i in 0..9 {
        let user = format!("q{i}");
        let m = send(
            app.sip,
            &register(&user, &user, 1, &[&format!("<{}>", contact(i))]),
        )
        .await;
        match status(&m) {
            200 => {
                answered.insert(pair(&user, &contact(i)));
            }
            503 => {
                assert_eq!(retry_after(&m).as_deref(), Some("17"));
                refused += 1;
            }
            s => panic!("unexpected {s}"),
        }
    }
    assert_eq!(answered.len(), 5, "the bound admits five bindings");
    assert_eq!(refused, 4);
    assert_eq!(
        listed(&app, &admin).await,
        answered,
        "nothing refused is in memory"
    );
    // A refresh or a removal of a queued binding needs no new slot: still accepted.
    let m = send(
        app.sip,
        &register("q0", "q0", 2, &[&format!("<{}>", contact(0))]),
    )
    .await;
    assert_eq!(status(&m), 200);
    let m = send(
        app.sip,
        &register("q1", "q1", 2, &[&format!("<{}>;expires=0", contact(1))]),
    )
    .await;
    assert_eq!(status(&m), 200);
    answered.remove(&pair("q1", &contact(1)));
    // A fetch is a read: answered.
    let m = send(app.sip, &register("q2", "fetch", 1, &[])).await;
    assert_eq!(status(&m), 200);
    assert!(contacts(&m).contains(&contact(2)));
    assert_eq!(p.refused(), 4);
    lock.release().await;

    assert_eq!(
        rows_become(&app, &answered).await,
        answered,
        "every 200 is stored"
    );
    queue_drains(p).await;
    // With the queue drained, the refused client's retry is accepted and stored.
    let m = send(
        app.sip,
        &register("q8", "q8", 2, &[&format!("<{}>", contact(8))]),
    )
    .await;
    assert_eq!(status(&m), 200);
    answered.insert(pair("q8", &contact(8)));
    assert_eq!(rows_become(&app, &answered).await, answered);
    assert_eq!(listed(&app, &admin).await, answered);
    assert_eq!(p.dropped(), 0);
}

#[tokio::test]
async fn sync_mode_answers_500_when_the_store_refuses_the_change_itself() {
    let app = start(Persistence::Sync, 100_000).await;
    let admin = admin_token(&app).await;
    // A rule of the operator's (a trigger) that refuses one contact: retrying cannot help.
    sqlx::raw_sql(
        "CREATE TRIGGER no_bad BEFORE INSERT ON bindings WHEN NEW.uri LIKE '%192.0.2.66%' \
         BEGIN SELECT RAISE(ABORT, 'refused'); END;",
    )
    .execute(app.users.store().pool())
    .await
    .unwrap();
    let m = send(app.sip, &register("r", "r1", 1, &["<sip:r@192.0.2.66>"])).await;
    assert_eq!(status(&m), 500);
    assert_eq!(retry_after(&m), None);
    assert!(listed(&app, &admin).await.is_empty());
    assert!(rows(&app).await.is_empty());
    let m = send(app.sip, &register("r", "r1", 2, &["<sip:r@192.0.2.67>"])).await;
    assert_eq!(status(&m), 200);
    let want: BTreeSet<_> = [pair("r", "sip:r@192.0.2.67")].into();
    assert_eq!(rows(&app).await, want);
}

#[tokio::test]
async fn memory_mode_answers_from_memory_and_writes_nothing() {
    let app = start(Persistence::Memory, 100_000).await;
    let admin = admin_token(&app).await;
    let a = "sip:m@192.0.2.7";
    let m = send(app.sip, &register("m", "c1", 1, &[&format!("<{a}>")])).await;
    assert_eq!(status(&m), 200);
    assert!(contacts(&m).contains(a));
    assert!(
        app.registrar.persister().is_none(),
        "no writer in memory mode"
    );
    let want: BTreeSet<_> = [pair("m", a)].into();
    assert_eq!(listed(&app, &admin).await, want);
    // Longer than a write-behind batch: still nothing stored.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(rows(&app).await.is_empty(), "memory mode stores no binding");
}
