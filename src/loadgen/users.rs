//! Who the generator registers as: users and tokens from the injection file that
//! `sipreg sipp-users` writes (`SEQUENTIAL`, then `username;password;token;...` per line;
//! `sipreg bench-users` adds a sixth field of further tokens, comma-separated), or
//! generated names for `--no-auth` runs.

use std::path::Path;

/// One user the generator acts for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct User {
    pub name: String,
    /// Empty when unknown (`--no-auth`).
    pub password: String,
    /// The access token; empty when unknown (`--no-auth`).
    pub token: String,
    /// Further access tokens of the user (fleet and first-sighting models).
    pub spare: Vec<String>,
}

impl User {
    /// How many tokens the user has.
    pub fn tokens(&self) -> usize {
        usize::from(!self.token.is_empty()) + self.spare.len()
    }

    /// The user's token number `i` (0 is [`User::token`]).
    pub fn token_at(&self, i: usize) -> &str {
        match i.checked_sub(1) {
            None => &self.token,
            Some(j) => self.spare.get(j).map_or("", String::as_str),
        }
    }
}

/// Reads a sipp injection file. Lines that are empty or the sipp ordering keyword
/// (`SEQUENTIAL`, `RANDOM`, `USER`) are skipped.
pub fn parse_csv(text: &str) -> Result<Vec<User>, String> {
    let mut users = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || matches!(line, "SEQUENTIAL" | "RANDOM" | "USER") {
            continue;
        }
        let mut f = line.split(';');
        let name = f.next().unwrap_or_default().trim();
        if name.is_empty() {
            return Err(format!("line {}: no username", i + 1));
        }
        let password = f.next().unwrap_or_default().to_string();
        let token = f.next().unwrap_or_default().to_string();
        // Fields 4 and 5 are sipp's (authentication keyword, domain).
        let spare = f
            .nth(2)
            .map(|t| {
                t.split(',')
                    .filter(|t| !t.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        users.push(User {
            name: name.to_string(),
            password,
            token,
            spare,
        });
    }
    if users.is_empty() {
        return Err("no users in the file".into());
    }
    Ok(users)
}

pub fn read_csv(path: &Path) -> Result<Vec<User>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    parse_csv(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// `count` users named `{prefix}0` ... without credentials.
pub fn generated(prefix: &str, count: usize) -> Vec<User> {
    (0..count)
        .map(|i| User {
            name: format!("{prefix}{i}"),
            ..User::default()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_sipp_users_format() {
        let u = parse_csv(
            "SEQUENTIAL\nbench0;Lab-1;eyJ0;[authentication username=bench0 password=Lab-1]\n\nbench1;p;t;[x];example.com\n",
        )
        .expect("parses");
        assert_eq!(u.len(), 2);
        assert_eq!(u[0].name, "bench0");
        assert_eq!(u[0].password, "Lab-1");
        assert_eq!(u[0].token, "eyJ0");
        assert_eq!(u[1].token, "t");
        assert!(u[0].spare.is_empty());
    }

    #[test]
    fn reads_the_further_tokens_of_bench_users() {
        let u = parse_csv(
            "b0;pw;t0;[authentication username=b0 password=pw];;t1,t2
",
        )
        .expect("parses");
        assert_eq!(u[0].tokens(), 3);
        assert_eq!(
            [u[0].token_at(0), u[0].token_at(1), u[0].token_at(2)],
            ["t0", "t1", "t2"]
        );
        assert_eq!(u[0].token_at(3), "");
    }

    #[test]
    fn refuses_empty_files_and_names() {
        assert!(parse_csv("SEQUENTIAL\n").is_err());
        assert!(parse_csv(";p;t\n").is_err());
    }

    #[test]
    fn generated_names() {
        let u = generated("aor", 3);
        assert_eq!(
            u.iter().map(|u| u.name.as_str()).collect::<Vec<_>>(),
            ["aor0", "aor1", "aor2"]
        );
        assert!(u[0].token.is_empty());
    }
}
