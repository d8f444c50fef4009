//! The users service end to end over SQLite: users, passwords, login, refresh
//! rotation and reuse detection, HA1s, API keys, signing key rotation.

mod common;

use common::{PASSWORD, add_user, env};
use sipreg::auth::AuthError;
use sipreg::users::{NewUser, UserQuery, UserUpdate, UsersError};

#[tokio::test]
async fn duplicate_username_is_a_clear_conflict() {
    let e = env().await;
    add_user(&e.svc, "alice", &[]).await;
    let err = e
        .svc
        .create_user(NewUser {
            username: "alice".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert!(matches!(err, UsersError::Conflict(_)), "{err:?}");
    assert_eq!(err.to_string(), "username 'alice' already exists");
}

#[tokio::test]
async fn weak_password_lists_rules_and_stores_nothing() {
    let e = env().await;
    let err = e
        .svc
        .create_user(NewUser {
            username: "bob".into(),
            password: Some("bob".into()),
            ..Default::default()
        })
        .await
        .unwrap_err();
    let UsersError::WeakPassword(rules) = err else {
        panic!("{err:?}")
    };
    assert!(rules.len() >= 3, "{rules:?}");
    assert!(e.svc.get_user_by_name("bob").await.is_err());
}

#[tokio::test]
async fn new_users_get_default_scopes_admins_also_admin() {
    let e = env().await;
    let u = add_user(&e.svc, "carol", &[]).await;
    assert_eq!(
        u.scopes,
        vec!["sip.register", "presence.read", "presence.write"]
    );
    let a = add_user(&e.svc, "root", &["admin"]).await;
    assert!(a.scopes.contains(&"admin".to_string()));
}

#[tokio::test]
async fn login_refresh_rotation_and_reuse_revokes_family() {
    let e = env().await;
    let u = add_user(&e.svc, "dave", &[]).await;
    let pair = e.svc.login("dave", PASSWORD, None).await.unwrap();
    let claims = e.svc.validate(&pair.access.access_token).await.unwrap();
    assert_eq!(claims.user_id(), u.id);
    assert_eq!(claims.username(), "dave");
    assert!(claims.has_scope("sip.register"));
    assert!(!claims.has_scope("admin"));

    let second = e.svc.refresh(&pair.refresh_token).await.unwrap();
    assert_ne!(second.refresh_token, pair.refresh_token);
    // Reusing the rotated token fails and revokes the family, including `second`.
    assert!(matches!(
        e.svc.refresh(&pair.refresh_token).await,
        Err(UsersError::BadRefreshToken)
    ));
    assert!(matches!(
        e.svc.refresh(&second.refresh_token).await,
        Err(UsersError::BadRefreshToken)
    ));
}

#[tokio::test]
async fn wrong_password_unknown_user_and_disabled_user_fail_alike() {
    let e = env().await;
    let u = add_user(&e.svc, "erin", &[]).await;
    assert!(matches!(
        e.svc.login("erin", "nope", None).await,
        Err(UsersError::BadCredentials)
    ));
    assert!(matches!(
        e.svc.login("nobody", PASSWORD, None).await,
        Err(UsersError::BadCredentials)
    ));
    let pair = e.svc.login("erin", PASSWORD, None).await.unwrap();
    e.svc.validate(&pair.access.access_token).await.unwrap();
    e.svc.disable_user(&u.id).await.unwrap();
    assert!(matches!(
        e.svc.login("erin", PASSWORD, None).await,
        Err(UsersError::BadCredentials)
    ));
    assert_eq!(
        e.svc.validate(&pair.access.access_token).await.unwrap_err(),
        AuthError::UserDisabled
    );
}

#[tokio::test]
async fn throttles_after_five_failures_per_user_and_per_ip() {
    let e = env().await;
    add_user(&e.svc, "frank", &[]).await;
    let ip = Some("192.0.2.7".parse().unwrap());
    for _ in 0..5 {
        assert!(matches!(
            e.svc.login("frank", "bad", ip).await,
            Err(UsersError::BadCredentials)
        ));
    }
    let err = e.svc.login("frank", PASSWORD, None).await.unwrap_err();
    assert!(
        matches!(err, UsersError::Throttled { retry_after_secs } if retry_after_secs > 0),
        "{err:?}"
    );
    // The address is locked too, even for another username.
    add_user(&e.svc, "grace", &[]).await;
    assert!(matches!(
        e.svc.login("grace", PASSWORD, ip).await,
        Err(UsersError::Throttled { .. })
    ));
    assert!(e.svc.login("grace", PASSWORD, None).await.is_ok());
}

#[tokio::test]
async fn password_change_revokes_refresh_tokens_and_updates_ha1() {
    let e = env().await;
    let u = add_user(&e.svc, "heidi", &[]).await;
    let md5_before = e.svc.digest_ha1("heidi", "MD5").await.unwrap().unwrap();
    let sha_before = e.svc.digest_ha1("heidi", "SHA-256").await.unwrap().unwrap();
    assert_eq!(md5_before.len(), 32);
    assert_eq!(sha_before.len(), 64);
    let pair = e.svc.login("heidi", PASSWORD, None).await.unwrap();
    e.svc
        .set_password(&u.id, "Another-Good-Pass-77")
        .await
        .unwrap();
    assert!(matches!(
        e.svc.refresh(&pair.refresh_token).await,
        Err(UsersError::BadRefreshToken)
    ));
    assert_ne!(
        e.svc.digest_ha1("heidi", "MD5").await.unwrap().unwrap(),
        md5_before
    );
    assert!(e.svc.login("heidi", PASSWORD, None).await.is_err());
    assert!(
        e.svc
            .login("heidi", "Another-Good-Pass-77", None)
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn list_filters_and_pages() {
    let e = env().await;
    for n in ["amy", "ann", "bea", "a_b", "axb"] {
        add_user(&e.svc, n, &[]).await;
    }
    let q = |f: &str, limit, offset| UserQuery {
        filter: Some(f.into()),
        limit: Some(limit),
        offset: Some(offset),
    };
    let names = |v: Vec<sipreg::users::User>| v.into_iter().map(|u| u.username).collect::<Vec<_>>();
    assert_eq!(
        names(e.svc.list_users(&q("A", 10, 0)).await.unwrap()),
        ["a_b", "amy", "ann", "axb", "bea"]
    );
    assert_eq!(
        names(e.svc.list_users(&q("a", 2, 1)).await.unwrap()),
        ["amy", "ann"]
    );
    // `_` is matched literally, not as a wildcard.
    assert_eq!(
        names(e.svc.list_users(&q("_", 10, 0)).await.unwrap()),
        ["a_b"]
    );
}

#[tokio::test]
async fn api_keys_scopes_exchange_rotation_revocation() {
    let e = env().await;
    let u = add_user(&e.svc, "svc", &[]).await;
    let (info, key) = e
        .svc
        .create_api_key(
            &u.id,
            "reader",
            Some(vec!["presence.read".into()]),
            Some(30),
        )
        .await
        .unwrap();
    assert!(key.starts_with("sipreg_"));
    let c = e.svc.validate(&key).await.unwrap();
    assert!(c.has_scope("presence.read") && !c.has_scope("sip.register"));
    let t = e.svc.exchange_api_key(&key).await.unwrap();
    assert_eq!(t.scope, "presence.read");
    assert!(
        e.svc
            .validate(&t.access_token)
            .await
            .unwrap()
            .has_scope("presence.read")
    );
    // Scopes beyond the owner's are refused.
    assert!(
        e.svc
            .create_api_key(&u.id, "x", Some(vec!["admin".into()]), None)
            .await
            .is_err()
    );

    let (new_info, new_key) = e.svc.rotate_api_key(&info.id).await.unwrap();
    assert_ne!(new_info.id, info.id);
    e.svc
        .validate(&key)
        .await
        .expect("old key valid during grace");
    e.svc.validate(&new_key).await.unwrap();
    let old = e.svc.get_api_key(&info.id).await.unwrap();
    assert!(old.expires_at.unwrap() <= sipreg::auth::now() + 86_400);

    e.svc.revoke_api_key(&new_info.id).await.unwrap();
    assert_eq!(
        e.svc.validate(&new_key).await.unwrap_err(),
        AuthError::Revoked
    );
    let mut wrong = new_key.clone();
    wrong.pop();
    wrong.push(if new_key.ends_with('0') { '1' } else { '0' });
    assert_eq!(
        e.svc.validate(&wrong).await.unwrap_err(),
        AuthError::InvalidApiKey
    );
}

#[tokio::test]
async fn signing_key_rotation_keeps_old_tokens_valid() {
    let e = env().await;
    add_user(&e.svc, "ivan", &[]).await;
    let before = e.svc.login("ivan", PASSWORD, None).await.unwrap();
    let old_kid = e.svc.current_kid();
    let new_kid = e.svc.rotate_signing_key().await.unwrap();
    assert_ne!(old_kid, new_kid);
    let kids: Vec<_> = e
        .svc
        .jwks()
        .keys
        .iter()
        .filter_map(|k| k.common.key_id.clone())
        .collect();
    assert!(kids.contains(&old_kid) && kids.contains(&new_kid));
    e.svc.validate(&before.access.access_token).await.unwrap();
    let after = e.svc.login("ivan", PASSWORD, None).await.unwrap();
    let header = jsonwebtoken::decode_header(&after.access.access_token).unwrap();
    assert_eq!(header.kid.as_deref(), Some(new_kid.as_str()));
}

#[tokio::test]
async fn update_and_delete_user() {
    let e = env().await;
    let u = add_user(&e.svc, "judy", &[]).await;
    let up = e
        .svc
        .update_user(
            &u.id,
            UserUpdate {
                display_name: Some("Judy J".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(up.display_name.as_deref(), Some("Judy J"));
    e.svc.delete_user(&u.id).await.unwrap();
    assert!(matches!(
        e.svc.get_user(&u.id).await,
        Err(UsersError::NotFound(_))
    ));
    assert!(matches!(
        e.svc.delete_user(&u.id).await,
        Err(UsersError::NotFound(_))
    ));
}

#[tokio::test]
async fn expired_refresh_token_is_refused() {
    // Two seconds, not one: expiry times are whole seconds, so a one-second token issued
    // late in a second may expire within milliseconds (the fresh login below failed
    // that way on a loaded CI machine).
    let e = common::env_with(|c| c.tokens.refresh_ttl_secs = 2).await;
    add_user(&e.svc, "kate", &[]).await;
    let pair = e.svc.login("kate", PASSWORD, None).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(3100)).await;
    assert!(matches!(
        e.svc.refresh(&pair.refresh_token).await,
        Err(UsersError::BadRefreshToken)
    ));
    // A fresh login still works and prunes the expired token.
    let again = e.svc.login("kate", PASSWORD, None).await.unwrap();
    assert!(e.svc.refresh(&again.refresh_token).await.is_ok());
}
