//! Token costs: RS256 verification alone, the validator uncached (signature, claims,
//! and the SQLite revocation lookups) and cached, and Argon2id at the default cost.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use sipreg::auth::Claims;
use sipreg::config::Config;
use sipreg::users::password::PasswordHasherArgon;
use sipreg::users::{NewUser, UsersConfig, UsersService};

fn tokens(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    let open = |cache_capacity: usize| {
        let mut config = Config::default();
        config.database.url = format!("sqlite://{}/bench.db?mode=rwc", dir.path().display());
        config.tokens.key_dir = dir.path().join("keys");
        config.tokens.cache_capacity = cache_capacity;
        rt.block_on(UsersService::open(&config)).expect("open")
    };
    let svc = open(10_000);
    let uncached = open(0);
    let user = rt
        .block_on(svc.create_user(NewUser {
            username: "bench".into(),
            ..Default::default()
        }))
        .expect("user");
    let token = svc
        .issue_token(&user, None, None)
        .expect("token")
        .access_token;

    let jwk = svc.jwks().keys[0].clone();
    let key = DecodingKey::from_jwk(&jwk).expect("jwk");
    let mut v = Validation::new(Algorithm::RS256);
    v.set_audience(&["sip"]);
    c.bench_function("rs256_verify_signature_and_claims", |b| {
        b.iter(|| jsonwebtoken::decode::<Claims>(black_box(&token), &key, &v).expect("valid"))
    });

    let validator = uncached.validator();
    c.bench_function("validator_uncached_with_revocation_lookups", |b| {
        b.iter(|| {
            rt.block_on(validator.validate(black_box(&token)))
                .expect("valid")
        })
    });

    let validator = svc.validator();
    rt.block_on(validator.validate(&token)).expect("valid");
    c.bench_function("validator_cached", |b| {
        b.iter(|| {
            validator
                .validate_cached(black_box(&token))
                .expect("hit")
                .expect("valid")
        })
    });

    let hasher = PasswordHasherArgon::new(&UsersConfig::default()).expect("argon2");
    let mut group = c.benchmark_group("argon2id");
    group.sample_size(10);
    group.bench_function("hash_m19456_t2_p1", |b| {
        b.iter(|| {
            hasher
                .hash(black_box("Correct-Horse-42-battery"))
                .expect("hash")
        })
    });
    group.finish();
}

criterion_group!(benches, tokens);
criterion_main!(benches);
