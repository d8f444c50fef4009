//! Property tests: arbitrary input, and arbitrary JWT-shaped input built from random
//! JSON headers and payloads, never passes validation and never panics.

mod common;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use proptest::prelude::*;

/// One runtime and store for all cases (a store per case costs a key generation).
static SHARED: std::sync::LazyLock<(tokio::runtime::Runtime, common::Env)> =
    std::sync::LazyLock::new(|| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let env = rt.block_on(common::env());
        (rt, env)
    });

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn random_strings_are_rejected(input in ".{0,600}") {
        let (rt, e) = &*SHARED;
        let v = e.svc.validator();
        prop_assert!(rt.block_on(v.validate(&input)).is_err());
    }

    #[test]
    fn random_jwt_shapes_are_rejected(
        alg in prop::sample::select(vec!["RS256", "ES256", "HS256", "none", "PS256", "", "rs256"]),
        kid in prop::option::of(".{0,40}"),
        payload in prop::collection::btree_map("[a-z]{1,6}", any::<i64>(), 0..6),
        iss in prop::option::of(prop::sample::select(vec!["https://sipreg.local", "x"])),
        sig in "[A-Za-z0-9_-]{0,400}",
    ) {
        let (rt, e) = &*SHARED;
        let v = e.svc.validator();
        let mut header = serde_json::json!({"alg": alg, "typ": "JWT"});
        if let Some(k) = kid {
            header["kid"] = serde_json::json!(k);
        }
        if kid_is_current(&header, e) {
            return Ok(());
        }
        let mut body = serde_json::to_value(&payload).unwrap();
        if let Some(i) = iss {
            body["iss"] = serde_json::json!(i);
        }
        let token = format!("{}.{}.{}", B64.encode(header.to_string()), B64.encode(body.to_string()), sig);
        prop_assert!(rt.block_on(v.validate(&token)).is_err());
    }
}

/// A random kid cannot collide with the real one; guard anyway.
fn kid_is_current(header: &serde_json::Value, e: &common::Env) -> bool {
    header["kid"].as_str() == Some(e.svc.current_kid().as_str())
}
