//! Token signature costs per backend, to choose one by measurement: RS256 sign and
//! verify with jsonwebtoken's RustCrypto backend (what sipreg used, the pure-Rust `rsa`
//! crate) and with ring (already in the tree through rustls; what sipreg uses now);
//! ES256 and EdDSA (Ed25519) with RustCrypto and ring, as alternatives to RS256.
//! aws-lc-rs is not measured: it would add a C build of several minutes to every CI run.
//!
//! `cargo bench --bench signatures`.
//! "parse+sign" re-parses the private key for every signature, as jsonwebtoken's own
//! providers do; "sign" uses a key parsed once, as `sipreg::auth::issuer` does.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use jsonwebtoken::crypto::CryptoProvider;
use jsonwebtoken::crypto::rust_crypto::DEFAULT_PROVIDER as RUST_CRYPTO;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};
use ring::signature as sig;
use sipreg::auth::crypto::{RING_PROVIDER, RingSigner};

/// A JWS signing input of the size of a sipreg access token's.
const MESSAGE: &[u8] = b"eyJ0eXAiOiJhdCtqd3QiLCJhbGciOiJSUzI1NiIsImtpZCI6IkxlOXhfS2pTOHBHVnRRb2t4ZEJ3Z0lfQ0VaQ1J4VnFRdGRrX2F2bEh6X0UifQ.eyJpc3MiOiJodHRwczovL3NpcHJlZy5leGFtcGxlLmNvbSIsInN1YiI6IjZmNDlkYjVhLTc0YjQtNGQ2Yi1iZTFmLTk4ZmY0NDNmNDE0ZiIsImF1ZCI6WyJzaXAiXSwiZXhwIjoxNzY1MDg0NDAwLCJpYXQiOjE3NjUwODA4MDAsIm5iZiI6MTc2NTA4MDgwMCwianRpIjoiOWM3YjNlZDAtN2U3Ni00YzM1LWE3YjQtNjU0ZWRlNzA4NTg2IiwidXNlcm5hbWUiOiJhbGljZSIsInJvbGVzIjpbXSwic2NvcGUiOiJzaXA6cmVnaXN0ZXIgc2lwOnByZXNlbmNlIn0";

fn sign_with(p: &CryptoProvider, alg: Algorithm, key: &EncodingKey) -> Vec<u8> {
    (p.signer_factory)(&alg, key)
        .expect("signer")
        .try_sign(MESSAGE)
        .expect("sign")
}

fn verify_with(p: &CryptoProvider, alg: Algorithm, key: &DecodingKey, signature: &Vec<u8>) {
    (p.verifier_factory)(&alg, key)
        .expect("verifier")
        .verify(MESSAGE, signature)
        .expect("valid");
}

fn rs256(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let (path, _) = sipreg::auth::keys::generate_into(dir.path()).expect("key");
    let key =
        sipreg::auth::keys::load_pem(&std::fs::read(path).expect("pem"), 0, None).expect("load");
    let encoding = &key.encoding;
    let decoding = &key.decoding;
    let parsed = RingSigner::rs256(encoding.as_bytes()).expect("ring key");
    let signature = sign_with(&RUST_CRYPTO, Algorithm::RS256, encoding);
    assert_eq!(parsed.sign_bytes(MESSAGE).expect("ring"), signature);

    let mut g = c.benchmark_group("rs256");
    g.bench_function("sign/rust_crypto", |b| {
        b.iter(|| sign_with(&RUST_CRYPTO, Algorithm::RS256, black_box(encoding)))
    });
    g.bench_function("parse+sign/ring", |b| {
        b.iter(|| sign_with(&RING_PROVIDER, Algorithm::RS256, black_box(encoding)))
    });
    g.bench_function("sign/ring", |b| {
        b.iter(|| parsed.sign_bytes(black_box(MESSAGE)).expect("sign"))
    });
    g.bench_function("verify/rust_crypto", |b| {
        b.iter(|| verify_with(&RUST_CRYPTO, Algorithm::RS256, decoding, &signature))
    });
    g.bench_function("verify/ring", |b| {
        b.iter(|| verify_with(&RING_PROVIDER, Algorithm::RS256, decoding, &signature))
    });
    g.finish();
}

/// ES256 and EdDSA: key pairs made by ring, used by both backends.
fn ec_and_ed(c: &mut Criterion) {
    let rng = ring::rand::SystemRandom::new();
    let cases = [
        (
            "es256",
            Algorithm::ES256,
            sig::EcdsaKeyPair::generate_pkcs8(&sig::ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
                .expect("p256"),
        ),
        (
            "eddsa",
            Algorithm::EdDSA,
            sig::Ed25519KeyPair::generate_pkcs8(&rng).expect("ed25519"),
        ),
    ];
    for (name, alg, pkcs8) in cases {
        let (encoding, parsed) = match alg {
            Algorithm::ES256 => (
                EncodingKey::from_ec_der(pkcs8.as_ref()),
                RingSigner::es256(pkcs8.as_ref()).expect("ring"),
            ),
            _ => (
                EncodingKey::from_ed_der(pkcs8.as_ref()),
                RingSigner::ed25519(pkcs8.as_ref()).expect("ring"),
            ),
        };
        let public = parsed.public_key_bytes().to_vec();
        let decoding = match alg {
            Algorithm::ES256 => DecodingKey::from_ec_der(&public),
            _ => DecodingKey::from_ed_der(&public),
        };
        let signature = parsed.sign_bytes(MESSAGE).expect("sign");
        // Each backend accepts the other's signatures.
        verify_with(&RUST_CRYPTO, alg, &decoding, &signature);
        let theirs = sign_with(&RUST_CRYPTO, alg, &encoding);
        verify_with(&RING_PROVIDER, alg, &decoding, &theirs);

        let mut g = c.benchmark_group(name);
        g.bench_function("sign/rust_crypto", |b| {
            b.iter(|| sign_with(&RUST_CRYPTO, alg, black_box(&encoding)))
        });
        g.bench_function("sign/ring", |b| {
            b.iter(|| parsed.sign_bytes(black_box(MESSAGE)).expect("sign"))
        });
        g.bench_function("verify/rust_crypto", |b| {
            b.iter(|| verify_with(&RUST_CRYPTO, alg, &decoding, &signature))
        });
        g.bench_function("verify/ring", |b| {
            b.iter(|| verify_with(&RING_PROVIDER, alg, &decoding, &signature))
        });
        g.finish();
    }
}

criterion_group!(benches, rs256, ec_and_ed);
criterion_main!(benches);
