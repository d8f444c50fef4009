//! What a scenario sends for a user and how it reacts to the final answer: the per-user
//! state (CSeq, whether the user already saw its 401, the Digest nonce, the subscription
//! dialog's To tag, the publication's entity-tag) and the step a call is at.

use super::digest::Challenge;
use super::message::{Auth, Kind};
use super::plan::{Model, Scenario, Workload};
use super::scan::{Name, Scanned};
use super::users::User;

/// A user's state inside its lane. Small on purpose: a million-AOR run keeps one each.
#[derive(Debug, Default)]
pub struct UserState {
    pub cseq: u32,
    /// A call for this user is in flight (a user has one at a time, so its CSeqs arrive
    /// in order).
    pub busy: bool,
    /// register-auth: the user has seen its 401 and sends its token from now on.
    pub primed: bool,
    pub to_tag: Option<Box<str>>,
    pub etag: Option<Box<str>>,
    pub digest: Option<Box<Challenge>>,
    /// The token of the current call (an index into the user's tokens).
    pub token: u32,
    /// Fleet: calls made with the current token. First-sighting: tokens used.
    pub uses: u32,
}

/// Where a call is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// The scenario's request, with the credentials the scenario sends by default.
    Plain,
    /// A REGISTER without credentials that expects a 401.
    Challenge,
    /// A REGISTER answering the challenge (Bearer or Digest).
    Answer,
}

/// What follows a final answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum After {
    Done,
    /// Send the next request of the same call (a new transaction).
    Next(Step),
    /// Done, and the 401 offered nothing the generator can answer.
    Unusable,
}

pub fn kind(s: Scenario) -> Kind {
    match s {
        Scenario::Register | Scenario::RegisterAuth | Scenario::RegisterDigest => Kind::Register,
        Scenario::Options => Kind::Options,
        Scenario::Subscribe => Kind::Subscribe,
        Scenario::Publish => Kind::Publish,
    }
}

/// The state of user number `g` (of the whole run) before its first call. Fleet: user
/// `g` starts `g mod token-uses` calls into its first token, so the fleet is in steady
/// state from the start: in any stretch of time, one registration in token-uses brings
/// a token the server has not seen yet.
pub fn initial_state(w: &Workload, g: usize) -> UserState {
    let uses = match w.model {
        Model::Fleet if w.token_uses > 0 => (g % w.token_uses as usize) as u32,
        _ => 0,
    };
    UserState {
        uses,
        ..UserState::default()
    }
}

/// Whether a new call may start for `user`: not busy and, first-sighting, a token left.
pub fn can_start(w: &Workload, user: &User, st: &UserState) -> bool {
    !st.busy && (w.model != Model::FirstSighting || (st.uses as usize) < user.tokens())
}

/// Picks the token of the call that starts now for `user` (see [`Model`]).
pub fn pick_token(w: &Workload, user: &User, st: &mut UserState) {
    match w.model {
        Model::Hot => {}
        Model::Fleet => {
            if w.token_uses > 0 && st.uses >= w.token_uses {
                st.uses = 0;
                // Past the last token, back to the first (by then seen before).
                st.token = (st.token + 1) % u32::try_from(user.tokens().max(1)).unwrap_or(1);
            }
            st.uses += 1;
        }
        Model::FirstSighting => {
            st.token = st.uses;
            st.uses += 1;
        }
    }
}

/// The first step of a new call for a user in this state; `fresh_nonce`: a Digest call
/// always starts without credentials, for a new nonce.
pub fn first_step(s: Scenario, fresh_nonce: bool, st: &UserState) -> Step {
    match s {
        Scenario::RegisterAuth if !st.primed => Step::Challenge,
        Scenario::RegisterDigest if fresh_nonce || st.digest.is_none() => Step::Challenge,
        Scenario::RegisterAuth | Scenario::RegisterDigest => Step::Answer,
        _ => Step::Plain,
    }
}

/// The credentials of a request at `step`. For Digest the Authorization value is written
/// into `scratch` (the next nonce-count of the user's nonce); `digest` is the
/// Request-URI and the client nonce it covers.
pub fn auth<'a>(
    s: Scenario,
    step: Step,
    send_tokens: bool,
    user: &'a User,
    st: &mut UserState,
    digest: (&str, &str),
    scratch: &'a mut String,
) -> Auth<'a> {
    match (s, step) {
        (_, Step::Challenge) => Auth::None,
        (Scenario::RegisterDigest, Step::Answer) => match st.digest.as_mut() {
            Some(c) => {
                *scratch = c.authorization(&user.name, "REGISTER", digest.0, digest.1);
                Auth::Value(scratch)
            }
            None => Auth::None,
        },
        _ if send_tokens => match user.token_at(st.token as usize) {
            "" => Auth::None,
            t => Auth::Bearer(t),
        },
        _ => Auth::None,
    }
}

/// Reacts to a final answer `code` (message `msg`) to a request at `step`.
pub fn on_final(
    s: Scenario,
    step: Step,
    code: u16,
    msg: &Scanned<'_>,
    user: &User,
    st: &mut UserState,
) -> After {
    match (s, step, code) {
        (Scenario::RegisterAuth, Step::Challenge, 401) => {
            st.primed = true;
            After::Next(Step::Answer)
        }
        (Scenario::RegisterDigest, Step::Challenge, 401) => {
            let offered = msg
                .headers()
                .filter(|(n, _)| *n == Name::WwwAuthenticate)
                .map(|(_, v)| v);
            match Challenge::pick(offered, &user.name, &user.password) {
                Some(c) => {
                    st.digest = Some(Box::new(c));
                    After::Next(Step::Answer)
                }
                None => After::Unusable,
            }
        }
        (Scenario::RegisterDigest, Step::Answer, 401) => {
            // Stale or refused nonce: the next call starts with a fresh challenge.
            st.digest = None;
            After::Done
        }
        (Scenario::Subscribe, _, 200..=299) => {
            if st.to_tag.is_none() {
                st.to_tag = msg.to_tag().map(Box::from);
            }
            After::Done
        }
        (Scenario::Subscribe, _, 481) => {
            // The dialog is gone (expired, server restarted): the next call makes a new one.
            st.to_tag = None;
            After::Done
        }
        (Scenario::Publish, _, 200..=299) => {
            if let Some(tag) = msg.first(Name::SipEtag) {
                st.etag = Some(Box::from(tag));
            }
            After::Done
        }
        (Scenario::Publish, _, 412) => {
            // RFC 3903 §4.4: an unknown entity-tag; publish the state afresh next time.
            st.etag = None;
            After::Done
        }
        _ => After::Done,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loadgen::scan::scan;

    fn user() -> User {
        User {
            name: "alice".into(),
            password: "pw".into(),
            token: "tok".into(),
            ..User::default()
        }
    }

    #[test]
    fn register_auth_is_401_then_bearer() {
        let u = user();
        let mut st = UserState::default();
        assert_eq!(
            first_step(Scenario::RegisterAuth, false, &st),
            Step::Challenge
        );
        let mut scratch = String::new();
        let a = auth(
            Scenario::RegisterAuth,
            Step::Challenge,
            true,
            &u,
            &mut st,
            ("sip:x", "c"),
            &mut scratch,
        );
        assert!(matches!(a, Auth::None));
        let m = scan(b"SIP/2.0 401 Unauthorized\r\nWWW-Authenticate: Bearer realm=\"x\"\r\n\r\n")
            .expect("scans");
        assert_eq!(
            on_final(
                Scenario::RegisterAuth,
                Step::Challenge,
                401,
                &m,
                &u,
                &mut st
            ),
            After::Next(Step::Answer)
        );
        let a = auth(
            Scenario::RegisterAuth,
            Step::Answer,
            true,
            &u,
            &mut st,
            ("sip:x", "c"),
            &mut scratch,
        );
        assert!(matches!(a, Auth::Bearer("tok")));
        // Later calls send the token at once.
        assert_eq!(first_step(Scenario::RegisterAuth, false, &st), Step::Answer);
    }

    #[test]
    fn register_digest_keeps_the_nonce() {
        let u = user();
        let mut st = UserState::default();
        let m = scan(
            b"SIP/2.0 401 Unauthorized\r\nWWW-Authenticate: Bearer realm=\"x\"\r\n\
              WWW-Authenticate: Digest realm=\"r\", nonce=\"n1\", qop=\"auth\", algorithm=MD5\r\n\r\n",
        )
        .expect("scans");
        assert_eq!(
            on_final(
                Scenario::RegisterDigest,
                Step::Challenge,
                401,
                &m,
                &u,
                &mut st
            ),
            After::Next(Step::Answer)
        );
        assert_eq!(
            first_step(Scenario::RegisterDigest, false, &st),
            Step::Answer
        );
        let mut scratch = String::new();
        let a = auth(
            Scenario::RegisterDigest,
            Step::Answer,
            true,
            &u,
            &mut st,
            ("sip:x", "c"),
            &mut scratch,
        );
        match a {
            Auth::Value(v) => assert!(
                v.starts_with("Digest username=\"alice\", realm=\"r\", nonce=\"n1\""),
                "{v}"
            ),
            other => panic!("{other:?}"),
        }
        // A 401 to the answer drops the nonce.
        assert_eq!(
            on_final(Scenario::RegisterDigest, Step::Answer, 401, &m, &u, &mut st),
            After::Done
        );
        assert_eq!(
            first_step(Scenario::RegisterDigest, false, &st),
            Step::Challenge
        );
        // With fresh nonces every call starts with a challenge.
        assert_eq!(
            first_step(Scenario::RegisterDigest, true, &st),
            Step::Challenge
        );
        // Only Bearer offered: nothing to answer.
        let b = scan(b"SIP/2.0 401 Unauthorized\r\nWWW-Authenticate: Bearer realm=\"x\"\r\n\r\n")
            .expect("scans");
        assert_eq!(
            on_final(
                Scenario::RegisterDigest,
                Step::Challenge,
                401,
                &b,
                &u,
                &mut st
            ),
            After::Unusable
        );
    }

    fn with_tokens(n: usize) -> User {
        User {
            spare: (1..n).map(|i| format!("tok{i}")).collect(),
            ..user()
        }
    }

    /// The tokens `calls` successive calls of user number `g` send under `w`.
    fn sent_by(w: &Workload, u: &User, g: usize, calls: usize) -> Vec<String> {
        let mut st = initial_state(w, g);
        let mut scratch = String::new();
        let mut out = Vec::new();
        for _ in 0..calls {
            if !can_start(w, u, &st) {
                break;
            }
            pick_token(w, u, &mut st);
            match auth(
                Scenario::Register,
                Step::Plain,
                true,
                u,
                &mut st,
                ("", ""),
                &mut scratch,
            ) {
                Auth::Bearer(t) => out.push(t.to_string()),
                other => panic!("{other:?}"),
            }
        }
        out
    }

    fn sent(w: &Workload, u: &User, calls: usize) -> Vec<String> {
        sent_by(w, u, 0, calls)
    }

    #[test]
    fn fleet_reuses_each_token_then_moves_on() {
        let w = Workload {
            model: Model::Fleet,
            token_uses: 2,
            ..Workload::default()
        };
        assert_eq!(
            sent(&w, &with_tokens(2), 5),
            ["tok", "tok", "tok1", "tok1", "tok"]
        );
        // The second user starts one call into its first token.
        assert_eq!(
            sent_by(&w, &with_tokens(2), 1, 4),
            ["tok", "tok1", "tok1", "tok"]
        );
        // Hot: always the first token.
        assert_eq!(sent(&Workload::default(), &with_tokens(2), 3), ["tok"; 3]);
    }

    #[test]
    fn first_sighting_sends_each_token_once_then_stops() {
        let w = Workload {
            model: Model::FirstSighting,
            ..Workload::default()
        };
        assert_eq!(sent(&w, &with_tokens(3), 10), ["tok", "tok1", "tok2"]);
    }

    #[test]
    fn publish_etag_lifecycle() {
        let u = user();
        let mut st = UserState::default();
        let ok = scan(b"SIP/2.0 200 OK\r\nSIP-ETag: e1\r\nExpires: 60\r\n\r\n").expect("scans");
        on_final(Scenario::Publish, Step::Plain, 200, &ok, &u, &mut st);
        assert_eq!(st.etag.as_deref(), Some("e1"));
        let gone = scan(b"SIP/2.0 412 Conditional Request Failed\r\n\r\n").expect("scans");
        on_final(Scenario::Publish, Step::Plain, 412, &gone, &u, &mut st);
        assert_eq!(st.etag, None);
    }

    #[test]
    fn subscribe_dialog_lifecycle() {
        let u = user();
        let mut st = UserState::default();
        let ok = scan(b"SIP/2.0 200 OK\r\nTo: <sip:bob@x>;tag=d1\r\n\r\n").expect("scans");
        on_final(Scenario::Subscribe, Step::Plain, 200, &ok, &u, &mut st);
        assert_eq!(st.to_tag.as_deref(), Some("d1"));
        let gone = scan(b"SIP/2.0 481 Call/Transaction Does Not Exist\r\n\r\n").expect("scans");
        on_final(Scenario::Subscribe, Step::Plain, 481, &gone, &u, &mut st);
        assert_eq!(st.to_tag, None);
        // A 501 (presence not served) leaves no dialog.
        let no = scan(b"SIP/2.0 501 Not Implemented\r\n\r\n").expect("scans");
        on_final(Scenario::Subscribe, Step::Plain, 501, &no, &u, &mut st);
        assert_eq!(st.to_tag, None);
    }
}
