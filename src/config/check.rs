//! `sipreg config check FILE`: every problem of a configuration file, each with its key,
//! instead of the first one the loader stops at. Three passes: TOML syntax; each key
//! against its section's type (unknown keys, wrong types), one key at a time so every bad
//! key is named; then the values that parse but cannot work together (min above max, a
//! certificate file that is missing, two listeners on one address...).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;

use super::Config;

/// One problem: the dotted key (empty for the whole file) and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub key: String,
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.key.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.key, self.message)
        }
    }
}

fn problem(key: impl Into<String>, message: impl Into<String>) -> Problem {
    Problem {
        key: key.into(),
        message: message.into(),
    }
}

/// Reads and checks `path`.
pub fn check_file(path: &Path) -> Result<Config, Vec<Problem>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| vec![problem("", format!("cannot read {}: {e}", path.display()))])?;
    check_text(&text)
}

/// The configuration `text` describes, or every problem found in it.
pub fn check_text(text: &str) -> Result<Config, Vec<Problem>> {
    let table: toml::Table =
        toml::from_str(text).map_err(|e| vec![problem("", one_line(&e.to_string()))])?;
    let mut problems = Vec::new();
    for (section, value) in &table {
        let alone = single(section, value.clone());
        let Err(e) = alone.try_into::<Config>() else {
            continue;
        };
        let mut named = false;
        // A section that is itself unknown is one problem, not one per key.
        let known = single(section, toml::Value::Table(toml::Table::new()))
            .try_into::<Config>()
            .is_ok();
        if let toml::Value::Table(keys) = value
            && known
        {
            for (key, v) in keys {
                let mut inner = toml::Table::new();
                inner.insert(key.clone(), v.clone());
                if let Err(e) = single(section, toml::Value::Table(inner)).try_into::<Config>() {
                    problems.push(problem(
                        format!("{section}.{key}"),
                        one_line(&e.to_string()),
                    ));
                    named = true;
                }
            }
        }
        if !named {
            problems.push(problem(section.clone(), one_line(&e.to_string())));
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    let config =
        Config::from_toml(text).map_err(|e| vec![problem("", one_line(&e.to_string()))])?;
    let problems = validate(&config);
    if problems.is_empty() {
        Ok(config)
    } else {
        Err(problems)
    }
}

fn single(section: &str, value: toml::Value) -> toml::Value {
    let mut t = toml::Table::new();
    t.insert(section.to_string(), value);
    toml::Value::Table(t)
}

/// toml's messages span lines (a caret under the source); one line per problem reads
/// better in a list.
fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Values that parse but cannot work.
pub fn validate(c: &Config) -> Vec<Problem> {
    let mut p = Vec::new();
    let mut at_least_one = |key: &str, v: u64| {
        if v == 0 {
            p.push(problem(key, "must be at least 1"));
        }
    };
    at_least_one("sip.max_headers", c.sip.max_headers as u64);
    at_least_one("sip.max_transactions", c.sip.max_transactions as u64);
    at_least_one(
        "sip.transaction_memory_bytes",
        c.sip.transaction_memory_bytes as u64,
    );
    at_least_one("sip.tcp_max_connections", c.sip.tcp_max_connections as u64);
    at_least_one("sip.t1_ms", c.sip.t1_ms);
    at_least_one("registrar.max_contacts", c.registrar.max_contacts as u64);
    at_least_one(
        "registrar.batch_max_changes",
        c.registrar.batch_max_changes as u64,
    );
    at_least_one("tls.max_connections", c.tls.max_connections as u64);
    at_least_one(
        "websocket.max_connections",
        c.websocket.max_connections as u64,
    );
    if c.sip.max_message_size < 1500 {
        p.push(problem(
            "sip.max_message_size",
            format!(
                "{} is below 1500 octets: most requests would be refused",
                c.sip.max_message_size
            ),
        ));
    }
    expires_range(
        &mut p,
        "registrar",
        "",
        (
            c.registrar.min_expires,
            c.registrar.default_expires,
            c.registrar.max_expires,
        ),
    );
    expires_range(
        &mut p,
        "presence",
        "publish_",
        (
            c.presence.publish_min_expires,
            c.presence.publish_default_expires,
            c.presence.publish_max_expires,
        ),
    );
    expires_range(
        &mut p,
        "presence",
        "subscribe_",
        (
            c.presence.subscribe_min_expires,
            c.presence.subscribe_default_expires,
            c.presence.subscribe_max_expires,
        ),
    );
    if let Err(e) = crate::auth::challenge::ChallengePolicy::from_config(&c.auth) {
        // Its messages start with the key ("auth.client_rules[0]: ...") when they have one.
        match e.split_once(": ") {
            Some((key, rest)) if key.starts_with("auth.") => p.push(problem(key, rest)),
            _ => p.push(problem("auth", e)),
        }
    }
    if c.auth.digest_enabled && c.auth.digest_realm.trim().is_empty() {
        p.push(problem(
            "auth.digest_realm",
            "is empty while Digest is enabled",
        ));
    }
    if c.users.password_min_length > c.users.password_max_length {
        p.push(problem(
            "users.password_min_length",
            format!(
                "{} is above users.password_max_length ({})",
                c.users.password_min_length, c.users.password_max_length
            ),
        ));
    }
    if let Err(e) = argon2::Params::new(
        c.users.argon2_memory_kib,
        c.users.argon2_iterations,
        c.users.argon2_parallelism,
        None,
    ) {
        p.push(problem(
            "users.argon2_memory_kib",
            format!("Argon2 parameters: {e}"),
        ));
    }
    database(&mut p, &c.database.url);
    let tls_on = match c.tls.settings() {
        Ok(s) => s.is_some(),
        Err(e) => {
            p.push(problem("tls", e.to_string()));
            false
        }
    };
    for (key, file) in [
        ("tls.cert_file", &c.tls.cert_file),
        ("tls.key_file", &c.tls.key_file),
        ("tls.client_ca_file", &c.tls.client_ca_file),
    ] {
        if !file.as_os_str().is_empty() && !file.is_file() {
            p.push(problem(
                key,
                format!("{} is not a readable file", file.display()),
            ));
        }
    }
    if let Some(addr) = c.http.public_listen
        && !tls_on
    {
        p.push(problem(
            "http.public_listen",
            format!("{addr} is HTTPS only: set tls.cert_file and tls.key_file"),
        ));
    }
    if let Some(addr) = c.websocket.wss_listen
        && !tls_on
    {
        p.push(problem(
            "websocket.wss_listen",
            format!("{addr} needs the [tls] certificate: set tls.cert_file and tls.key_file"),
        ));
    }
    listeners(&mut p, c, tls_on);
    if let Err(e) = c.log.validate() {
        p.push(problem("log.level", e));
    }
    for (key, e) in c.trace.validate() {
        p.push(problem(key, e));
    }
    p
}

/// `min <= default <= max` for one family of `*_expires` keys.
fn expires_range(
    p: &mut Vec<Problem>,
    section: &str,
    prefix: &str,
    (min, default, max): (u32, u32, u32),
) {
    let key = |k: &str| format!("{section}.{prefix}{k}_expires");
    if min > max {
        p.push(problem(
            key("min"),
            format!("{min} is above {} ({max})", key("max")),
        ));
    } else if default < min || default > max {
        p.push(problem(
            key("default"),
            format!(
                "{default} is outside {}..{} ({min}..{max})",
                key("min"),
                key("max")
            ),
        ));
    }
}

fn database(p: &mut Vec<Problem>, url: &str) {
    let known = ["sqlite:", "postgres://", "postgresql://"];
    if !known.iter().any(|k| url.starts_with(k)) {
        p.push(problem(
            "database.url",
            format!("{url:?} is neither sqlite:... nor postgres://..."),
        ));
    }
}

/// Two TCP listeners on one address (port 0, "any free port", never collides).
fn listeners(p: &mut Vec<Problem>, c: &Config, tls_on: bool) {
    let mut tcp: Vec<(&str, SocketAddr)> =
        vec![("sip.listen", c.sip.listen), ("http.listen", c.http.listen)];
    if tls_on {
        tcp.push(("tls.listen", c.tls.listen));
    }
    if let Some(a) = c.http.public_listen {
        tcp.push(("http.public_listen", a));
    }
    if let Some(a) = c.websocket.ws_listen {
        tcp.push(("websocket.ws_listen", a));
    }
    if let Some(a) = c.websocket.wss_listen {
        tcp.push(("websocket.wss_listen", a));
    }
    let mut seen: HashMap<SocketAddr, &str> = HashMap::new();
    for (key, addr) in tcp {
        if addr.port() == 0 {
            continue;
        }
        if let Some(first) = seen.get(&addr) {
            p.push(problem(key, format!("{addr} is also {first}")));
        } else {
            seen.insert(addr, key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(text: &str) -> Vec<String> {
        check_text(text)
            .err()
            .unwrap_or_default()
            .into_iter()
            .map(|p| p.key)
            .collect()
    }

    #[test]
    fn the_shipped_file_is_ok() {
        assert_eq!(
            check_text(include_str!("../../config/sipreg.toml")),
            Ok(Config::default())
        );
    }

    #[test]
    fn every_bad_key_is_named() {
        let text = "[sip]\nlisten_typo = 1\nt1_ms = \"fast\"\n[registrar]\nmin_expires = 3600\nmax_expires = 60\n[nosuch]\nx = 1\n";
        assert_eq!(keys(text), ["nosuch", "sip.listen_typo", "sip.t1_ms"]);
    }

    #[test]
    fn values_that_cannot_work_together() {
        let text = "[registrar]\nmin_expires = 3600\nmax_expires = 60\n[http]\nlisten = \"127.0.0.1:5060\"\n[sip]\nlisten = \"127.0.0.1:5060\"\n[database]\nurl = \"mysql://x\"\n";
        assert_eq!(
            keys(text),
            ["registrar.min_expires", "database.url", "http.listen"]
        );
    }

    #[test]
    fn syntax_errors_are_one_problem() {
        let problems = check_text("[sip\n").unwrap_err();
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].key, "");
    }
}
