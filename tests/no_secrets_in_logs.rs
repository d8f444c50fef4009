//! No password, token, API key or private key appears in the logs at any level.
//! Alone in its binary so the global TRACE subscriber sees every event.

mod common;

use std::sync::{Arc, Mutex};

use common::{PASSWORD, add_user, env};

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn secrets_never_reach_the_logs() {
    let capture = Capture::default();
    let writer = capture.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish();
    // Global, in a test binary of its own: a thread-local subscriber can miss events
    // whose callsite interest was cached while other tests ran without one.
    tracing::subscriber::set_global_default(subscriber).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let secrets = rt.block_on(async {
        let e = env().await;
        let u = add_user(&e.svc, "victor", &["admin"]).await;
        let pair = e
            .svc
            .login("victor", PASSWORD, Some("198.51.100.1".parse().unwrap()))
            .await
            .unwrap();
        let _ = e.svc.login("victor", "Wrong-Guess-123!", None).await;
        let pair2 = e.svc.refresh(&pair.refresh_token).await.unwrap();
        // Validated before the reuse below, which revokes the family and its tokens.
        e.svc.validate(&pair2.access.access_token).await.unwrap();
        let _ = e.svc.refresh(&pair.refresh_token).await;
        let (k, key) = e.svc.create_api_key(&u.id, "ci", None, None).await.unwrap();
        e.svc.validate(&key).await.unwrap();
        let (_, key2) = e.svc.rotate_api_key(&k.id).await.unwrap();
        e.svc
            .set_password(&u.id, "Changed-Secret-9-x")
            .await
            .unwrap();
        let _ = e.svc.validate("garbage").await;
        e.svc
            .logout(Some(&pair2.refresh_token), None)
            .await
            .unwrap();
        let kid = e.svc.current_kid();
        let pem =
            std::fs::read_to_string(e.config.tokens.key_dir.join(format!("signing-{kid}.pem")))
                .unwrap();
        let pem_body = pem.lines().nth(1).unwrap().to_string();
        vec![
            PASSWORD.to_string(),
            "Wrong-Guess-123!".into(),
            "Changed-Secret-9-x".into(),
            pair.access.access_token,
            pair.refresh_token,
            pair2.access.access_token,
            pair2.refresh_token,
            key.clone(),
            key.rsplit('_').next().unwrap().to_string(),
            key2,
            pem_body,
            "PRIVATE KEY".into(),
        ]
    });
    let logs = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("login") && logs.contains("API key created"),
        "logs were not captured: {}",
        &logs[..logs.len().min(3000)]
    );
    for s in secrets {
        assert!(
            !logs.contains(&s),
            "secret found in logs: {}…",
            &s[..s.len().min(12)]
        );
    }
}
