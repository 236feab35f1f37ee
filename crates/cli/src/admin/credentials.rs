//! Who `stompkit admin` says it is: the login and secret to send, from the
//! command line or the environment.
//!
//! Owns choosing between `--passcode` and `--token` and what happens to the
//! STOMP commands' variables (`$STOMPKIT_LOGIN`, `$STOMPKIT_PASSCODE`) that
//! `admin` shares: a value given on the command line wins over one from the
//! environment, and a secret from the environment without a login is left
//! unused (a loopback admin address needs none) instead of being an error.
//! Also tells a password from a token (`v1.<expiry>.<signature>`, as the
//! broker tells them apart) for the clear-text rule in `http.rs`.

use anyhow::{Result, bail};
use clap::ArgMatches;
use clap::parser::ValueSource;

/// Where an option's value came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// The command line (`--passcode`, ...).
    Flag,
    /// An environment variable (`$STOMPKIT_PASSCODE`, ...).
    Env,
}

impl Origin {
    /// Where the value of the argument `id` in `matches` came from
    /// (anything but the command line counts as the environment).
    pub fn of(matches: Option<&ArgMatches>, id: &str) -> Origin {
        match matches.and_then(|m| m.value_source(id)) {
            Some(ValueSource::CommandLine) => Origin::Flag,
            _ => Origin::Env,
        }
    }
}

/// An option's value and where it came from.
#[derive(Clone, Copy, Debug)]
pub struct Given<'a> {
    /// The value.
    pub value: &'a str,
    /// Where it came from.
    pub origin: Origin,
}

impl<'a> Given<'a> {
    /// The argument `id`'s `value`, if any, with where `matches` say it
    /// came from.
    pub fn of(value: Option<&'a str>, matches: Option<&ArgMatches>, id: &str) -> Option<Self> {
        value.map(|value| Given {
            value,
            origin: Origin::of(matches, id),
        })
    }
}

/// What the secret is, and so how it is named in an error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Passcode,
    Token,
}

/// The credentials to send: a login and its passcode or token.
#[derive(Debug, PartialEq, Eq)]
pub struct Credentials<'a> {
    /// The admin user.
    pub login: &'a str,
    /// The password or token.
    pub secret: &'a str,
    /// The option or variable the secret came from, for error lines.
    pub named: &'static str,
}

impl Credentials<'_> {
    /// Whether the secret is a password: anything the broker would not take
    /// as a token (`v1.<expiry digits>.<43-character signature>`).
    pub fn is_password(&self) -> bool {
        !is_token(self.secret)
    }
}

/// The credentials to send from `--login`, `--passcode` and `--token`
/// (each given on the command line or from the environment), or none.
///
/// Both secrets given: the command line's wins; both from the environment,
/// the token; both on the command line is an error. A secret without a
/// login is an error when given on the command line and unused when from
/// the environment (the STOMP commands' `$STOMPKIT_PASSCODE`, say).
pub fn resolve<'a>(
    login: Option<Given<'a>>,
    passcode: Option<Given<'a>>,
    token: Option<Given<'a>>,
) -> Result<Option<Credentials<'a>>> {
    let chosen = match (passcode, token) {
        (Some(p), Some(t)) if p.origin == Origin::Flag && t.origin == Origin::Flag => {
            bail!("give --passcode or --token, not both")
        }
        (Some(p), Some(t)) if p.origin == Origin::Flag && t.origin == Origin::Env => {
            Some((p, Kind::Passcode))
        }
        (_, Some(t)) => Some((t, Kind::Token)),
        (Some(p), None) => Some((p, Kind::Passcode)),
        (None, None) => None,
    };
    let Some((secret, kind)) = chosen else {
        return Ok(None);
    };
    let named = match (kind, secret.origin) {
        (Kind::Passcode, Origin::Flag) => "--passcode",
        (Kind::Passcode, Origin::Env) => "$STOMPKIT_PASSCODE",
        (Kind::Token, Origin::Flag) => "--token",
        (Kind::Token, Origin::Env) => "$STOMPKIT_TOKEN",
    };
    match login {
        Some(login) => Ok(Some(Credentials {
            login: login.value,
            secret: secret.value,
            named,
        })),
        None if secret.origin == Origin::Flag => {
            bail!("{named} needs --login (the admin user it belongs to)")
        }
        None => Ok(None),
    }
}

/// Whether `secret` has the shape of a token, as the broker decides it:
/// `v1.`, 1 to 20 digits, `.`, a 43-character signature.
fn is_token(secret: &str) -> bool {
    let Some(rest) = secret.strip_prefix("v1.") else {
        return false;
    };
    let Some((expiry, signature)) = rest.split_once('.') else {
        return false;
    };
    (1..=20).contains(&expiry.len())
        && expiry.bytes().all(|b| b.is_ascii_digit())
        && signature.len() == 43
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flag(value: &str) -> Option<Given<'_>> {
        Some(Given {
            value,
            origin: Origin::Flag,
        })
    }

    fn env(value: &str) -> Option<Given<'_>> {
        Some(Given {
            value,
            origin: Origin::Env,
        })
    }

    fn sent(
        login: Option<Given<'_>>,
        passcode: Option<Given<'_>>,
        token: Option<Given<'_>>,
    ) -> Result<Option<(String, String, &'static str)>, String> {
        resolve(login, passcode, token)
            .map(|c| c.map(|c| (c.login.to_owned(), c.secret.to_owned(), c.named)))
            .map_err(|e| e.to_string())
    }

    fn ok(
        login: &str,
        secret: &str,
        named: &'static str,
    ) -> Result<Option<(String, String, &'static str)>, String> {
        Ok(Some((login.to_owned(), secret.to_owned(), named)))
    }

    #[test]
    fn a_command_line_secret_wins_over_the_environments() {
        assert_eq!(
            sent(flag("ops"), env("pw"), flag("tk")),
            ok("ops", "tk", "--token")
        );
        assert_eq!(
            sent(flag("ops"), flag("pw"), env("tk")),
            ok("ops", "pw", "--passcode")
        );
        assert_eq!(
            sent(env("ops"), env("pw"), env("tk")),
            ok("ops", "tk", "$STOMPKIT_TOKEN")
        );
        assert_eq!(
            sent(env("ops"), env("pw"), None),
            ok("ops", "pw", "$STOMPKIT_PASSCODE")
        );
        assert_eq!(
            sent(flag("ops"), flag("pw"), flag("tk")),
            Err("give --passcode or --token, not both".to_owned())
        );
    }

    #[test]
    fn a_secret_without_a_login_is_unused_from_the_environment_and_an_error_on_the_command_line() {
        assert_eq!(sent(None, env("pw"), None), Ok(None));
        assert_eq!(sent(None, env("pw"), env("tk")), Ok(None));
        assert_eq!(
            sent(None, env("pw"), flag("tk")),
            Err("--token needs --login (the admin user it belongs to)".to_owned())
        );
        assert_eq!(
            sent(None, flag("pw"), None),
            Err("--passcode needs --login (the admin user it belongs to)".to_owned())
        );
        assert_eq!(sent(flag("ops"), None, None), Ok(None));
        assert_eq!(sent(None, None, None), Ok(None));
    }

    #[test]
    fn passwords_are_what_the_broker_would_not_take_as_a_token() {
        let signature = "a".repeat(43);
        let credentials = |secret: &str| {
            Credentials {
                login: "ops",
                secret,
                named: "--token",
            }
            .is_password()
        };
        assert!(!credentials(&format!("v1.1765000000.{signature}")));
        assert!(!credentials(&format!("v1.1.{signature}")));
        for password in [
            "ops-pass",
            "",
            "v1.",
            "v1.1.bad",
            &format!("v1..{signature}"),
            &format!("v1.x1.{signature}"),
            &format!("v1.{}.{signature}", "1".repeat(21)),
            &format!("v1.1.{signature}a"),
            &format!("v2.1.{signature}"),
        ] {
            assert!(credentials(password), "{password}");
        }
    }
}
