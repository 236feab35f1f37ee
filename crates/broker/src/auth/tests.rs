//! Authenticator unit tests: real argon2 (cheap parameters), real tokens, tokio
//! time paused where delays are measured.
#![allow(clippy::unwrap_used)]

use super::*;
use argon2::Params;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Counts verifications running at once and remembers the most, and the cost
/// parameters of every hash verified.
#[derive(Debug, Default)]
pub(super) struct Peak {
    running: AtomicUsize,
    most: AtomicUsize,
    costs: std::sync::Mutex<Vec<String>>,
}

pub(super) struct Running<'a>(&'a Peak);

impl Peak {
    pub(super) fn enter(&self, hash: &str) -> Running<'_> {
        // `$argon2id$v=19$m=…,t=…,p=…$salt$hash` → `argon2id m=…,t=…,p=…`
        let parts: Vec<&str> = hash.split('$').collect();
        let cost = format!("{} {}", parts[1], parts[3]);
        self.costs.lock().unwrap().push(cost);
        let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.most.fetch_max(now, Ordering::SeqCst);
        // Long enough for overlapping verifications to be seen.
        std::thread::sleep(Duration::from_millis(20));
        Running(self)
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.running.fetch_sub(1, Ordering::SeqCst);
    }
}

const SECRET: &str = "0123456789abcdef0123456789abcdef";

fn cheap_hash(password: &str) -> String {
    password::hash_with(password, Params::new(1024, 1, 1, None).unwrap()).unwrap()
}

fn user(login: &str, password: &str) -> UserConfig {
    UserConfig {
        login: login.to_owned(),
        password_hash: cheap_hash(password),
        send: None,
        subscribe: None,
        admin: false,
    }
}

fn config() -> AuthConfig {
    let mut alice = user("alice", "wonderland");
    alice.send = Some(vec!["/topic/chat.*".to_owned()]);
    AuthConfig {
        users: vec![alice, user("bob", "builder")],
        failure_delay_ms: 0,
        max_failure_delay_ms: 0,
        default_send: vec!["/topic/public".to_owned()],
        default_subscribe: vec!["/topic/**".to_owned()],
        anonymous_send: vec![],
        anonymous_subscribe: vec!["/topic/news".to_owned()],
        ..AuthConfig::default()
    }
}

fn peer() -> SocketAddr {
    "192.0.2.7:40000".parse().unwrap()
}

fn req(login: Option<&str>, passcode: Option<&str>) -> AuthRequest {
    AuthRequest {
        login: login.map(str::to_owned),
        passcode: passcode.map(str::to_owned),
    }
}

fn accepted(v: Verdict) -> Principal {
    match v {
        Verdict::Accepted(p) => p,
        Verdict::Refused => panic!("refused"),
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[tokio::test]
async fn zero_setup_everyone_is_anonymous_with_all_rights() {
    let auth = Authenticator::new(&AuthConfig::default()).unwrap();
    assert!(auth.allows_anonymous());
    for r in [
        req(None, None),
        req(Some("guest"), Some("guest")),
        req(Some(""), None),
    ] {
        let p = accepted(auth.authenticate(peer(), r).await);
        assert_eq!(p.login, None);
        assert!(p.permissions.may_send("/queue/anything/at/all"));
        assert!(p.permissions.may_subscribe("/topic/x"));
    }
}

#[tokio::test]
async fn passwords_accept_the_right_one_only() {
    let auth = Authenticator::new(&config()).unwrap();
    let alice = accepted(
        auth.authenticate(peer(), req(Some("alice"), Some("wonderland")))
            .await,
    );
    assert_eq!(alice.login.as_deref(), Some("alice"));
    assert!(alice.permissions.may_send("/topic/chat.lobby"));
    assert!(!alice.permissions.may_send("/topic/public"));
    assert!(
        alice.permissions.may_subscribe("/topic/x/y"),
        "subscribe falls back to default_subscribe"
    );
    let bob = accepted(
        auth.authenticate(peer(), req(Some("bob"), Some("builder")))
            .await,
    );
    assert!(bob.permissions.may_send("/topic/public"), "default_send");
    for bad in [
        req(Some("alice"), Some("builder")),
        req(Some("alice"), Some("")),
        req(Some("alice"), None),
        req(Some("carol"), Some("wonderland")),
        req(Some("Alice"), Some("wonderland")),
    ] {
        assert_eq!(
            auth.authenticate(peer(), bad.clone()).await,
            Verdict::Refused,
            "{bad:?}"
        );
    }
}

#[tokio::test]
async fn anonymous_needs_allow_anonymous_once_users_exist() {
    let auth = Authenticator::new(&config()).unwrap();
    assert!(!auth.allows_anonymous());
    assert_eq!(
        auth.authenticate(peer(), req(None, None)).await,
        Verdict::Refused
    );
    assert_eq!(
        auth.authenticate(peer(), req(Some(""), Some("x"))).await,
        Verdict::Refused
    );
    let open = Authenticator::new(&AuthConfig {
        allow_anonymous: true,
        ..config()
    })
    .unwrap();
    let anon = accepted(open.authenticate(peer(), req(None, None)).await);
    assert_eq!(anon.login, None);
    assert!(
        !anon.permissions.may_send("/topic/news"),
        "anonymous_send = []"
    );
    assert!(anon.permissions.may_subscribe("/topic/news"));
    assert!(!anon.permissions.may_subscribe("/topic/other"));
    // A wrong password is refused, not downgraded to anonymous.
    assert_eq!(
        open.authenticate(peer(), req(Some("alice"), Some("nope")))
            .await,
        Verdict::Refused
    );
}

#[tokio::test]
async fn tokens_until_expiry_within_the_maximum_lifetime() {
    let auth = Authenticator::new(&AuthConfig {
        token_secret: config::Secret::new(SECRET),
        token_max_ttl_s: 3600,
        ..config()
    })
    .unwrap();
    let now = unix_now();
    let web = token::mint(SECRET.as_bytes(), "webuser", now + 600);
    let p = accepted(
        auth.authenticate(peer(), req(Some("webuser"), Some(&web)))
            .await,
    );
    assert_eq!(p.login.as_deref(), Some("webuser"));
    assert!(p.permissions.may_send("/topic/public") && !p.permissions.may_send("/topic/x"));
    // A listed user logging in with a token gets its own rules.
    let alice = token::mint(SECRET.as_bytes(), "alice", now + 600);
    let p = accepted(
        auth.authenticate(peer(), req(Some("alice"), Some(&alice)))
            .await,
    );
    assert!(p.permissions.may_send("/topic/chat.x"));
    for (login, passcode) in [
        ("bob", web.clone()), // other login
        (
            "webuser",
            token::mint(SECRET.as_bytes(), "webuser", now - 1),
        ), // expired
        (
            "webuser",
            token::mint(SECRET.as_bytes(), "webuser", now + 7200),
        ), // too long
        (
            "webuser",
            token::mint(b"another secret, 16+ bytes", "webuser", now + 60),
        ),
    ] {
        assert_eq!(
            auth.authenticate(peer(), req(Some(login), Some(&passcode)))
                .await,
            Verdict::Refused,
            "{login} {passcode}"
        );
    }
}

#[tokio::test]
async fn without_a_secret_tokens_are_just_wrong_passwords() {
    let auth = Authenticator::new(&config()).unwrap();
    let t = token::mint(SECRET.as_bytes(), "alice", unix_now() + 60);
    assert_eq!(
        auth.authenticate(peer(), req(Some("alice"), Some(&t)))
            .await,
        Verdict::Refused
    );
}

#[test]
fn bad_configs_are_one_line_errors() {
    let short = AuthConfig {
        token_secret: config::Secret::new("short"),
        ..AuthConfig::default()
    };
    let e = Authenticator::new(&short).err().unwrap().to_string();
    assert!(e.contains("token_secret") && !e.contains('\n'), "{e}");
    let mut dup = config();
    dup.users.push(user("alice", "again"));
    assert!(
        Authenticator::new(&dup)
            .err()
            .unwrap()
            .to_string()
            .contains("twice")
    );
    let mut plain = config();
    plain.users[0].password_hash = "wonderland".to_owned();
    let e = Authenticator::new(&plain).err().unwrap().to_string();
    assert!(e.contains("alice") && e.contains("password_hash"), "{e}");
    let missing = AuthConfig {
        users_file: "/nonexistent/users.toml".to_owned(),
        ..AuthConfig::default()
    };
    assert!(
        Authenticator::new(&missing)
            .err()
            .unwrap()
            .to_string()
            .contains("users file")
    );
    let zero = AuthConfig {
        verify_concurrency: 0,
        ..AuthConfig::default()
    };
    assert!(Authenticator::new(&zero).is_err());
}

#[tokio::test]
async fn users_file_adds_users() {
    let dir = std::env::temp_dir().join(format!("stompkit-users-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("users.toml");
    std::fs::write(
        &path,
        format!(
            "[[users]]\nlogin = \"carol\"\npassword_hash = \"{}\"\nsubscribe = [\"/queue/carol\"]\n",
            cheap_hash("pw")
        ),
    )
    .unwrap();
    let auth = Authenticator::new(&AuthConfig {
        users_file: path.display().to_string(),
        ..config()
    })
    .unwrap();
    let carol = accepted(
        auth.authenticate(peer(), req(Some("carol"), Some("pw")))
            .await,
    );
    assert!(carol.permissions.may_subscribe("/queue/carol"));
    assert!(!carol.permissions.may_subscribe("/queue/alice"));
    accepted(
        auth.authenticate(peer(), req(Some("alice"), Some("wonderland")))
            .await,
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn safe_defaults_refuse_anonymous_off_loopback() {
    let addrs =
        |list: &[&str]| -> Vec<SocketAddr> { list.iter().map(|a| a.parse().unwrap()).collect() };
    let open = AuthConfig::default();
    let auth = Authenticator::new(&open).unwrap();
    assert!(
        auth.check_listeners(&open, &addrs(&["127.0.0.1:1", "[::1]:2"]))
            .is_ok()
    );
    let e = auth
        .check_listeners(&open, &addrs(&["127.0.0.1:1", "0.0.0.0:61613"]))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("0.0.0.0:61613") && e.contains("allow_anonymous"),
        "{e}"
    );
    assert!(!e.contains('\n'));
    assert!(
        auth.check_listeners(&open, &addrs(&["192.0.2.1:1"]))
            .is_err()
    );
    let allowed = AuthConfig {
        allow_anonymous: true,
        ..AuthConfig::default()
    };
    let auth = Authenticator::new(&allowed).unwrap();
    assert!(
        auth.check_listeners(&allowed, &addrs(&["0.0.0.0:1"]))
            .is_ok()
    );
    let users = config();
    let auth = Authenticator::new(&users).unwrap();
    assert!(auth.check_listeners(&users, &addrs(&["0.0.0.0:1"])).is_ok());
    let tokens = AuthConfig {
        token_secret: config::Secret::new(SECRET),
        ..AuthConfig::default()
    };
    let auth = Authenticator::new(&tokens).unwrap();
    assert!(
        auth.check_listeners(&tokens, &addrs(&["0.0.0.0:1"]))
            .is_ok()
    );
    assert!(
        !auth.allows_anonymous(),
        "a token secret alone turns anonymous off"
    );
}

#[tokio::test(start_paused = true)]
async fn failures_are_delayed_and_slowed_per_address() {
    let auth = Authenticator::new(&AuthConfig {
        failure_delay_ms: 100,
        max_failure_delay_ms: 1000,
        ..config()
    })
    .unwrap();
    let elapsed = |r| {
        let auth = &auth;
        async move {
            let start = tokio::time::Instant::now();
            let v = auth.authenticate(peer(), r).await;
            (v, start.elapsed().as_millis())
        }
    };
    // Virtual time: exactly the sleeps (argon2 runs while time stands still).
    let mut seen = Vec::new();
    for _ in 0..5 {
        let (v, ms) = elapsed(req(Some("alice"), Some("bad"))).await;
        assert_eq!(v, Verdict::Refused);
        seen.push(ms);
    }
    // Failure n waits 100·2^(n−1) before its ERROR, and from the second on as long
    // again before being checked; both capped at 1000.
    assert_eq!(seen, [100, 100 + 200, 200 + 400, 400 + 800, 800 + 1000]);
    assert_eq!(auth.recent_failures(peer().ip()), 5);
    // Another address is not slowed.
    let other: SocketAddr = "198.51.100.1:1".parse().unwrap();
    let start = tokio::time::Instant::now();
    let v = auth
        .authenticate(other, req(Some("alice"), Some("wonderland")))
        .await;
    assert!(matches!(v, Verdict::Accepted(_)));
    assert_eq!(start.elapsed().as_millis(), 0);
    // Unknown login: the same delays as a wrong password.
    let third: SocketAddr = "198.51.100.2:1".parse().unwrap();
    let start = tokio::time::Instant::now();
    assert_eq!(
        auth.authenticate(third, req(Some("nobody"), Some("x")))
            .await,
        Verdict::Refused
    );
    assert_eq!(start.elapsed().as_millis(), 100);
    // Success forgets the address's failures.
    let (v, _) = elapsed(req(Some("alice"), Some("wonderland"))).await;
    assert!(matches!(v, Verdict::Accepted(_)));
    assert_eq!(auth.recent_failures(peer().ip()), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verifications_are_bounded_by_the_semaphore() {
    let auth = Arc::new(
        Authenticator::new(&AuthConfig {
            verify_concurrency: 2,
            ..config()
        })
        .unwrap(),
    );
    let tasks: Vec<_> = (0..12u8)
        .map(|i| {
            let auth = auth.clone();
            // Distinct addresses: no per-address penalty serializes them.
            let peer = SocketAddr::from(([10, 0, 0, i], 1));
            tokio::spawn(async move {
                auth.authenticate(peer, req(Some("bob"), Some("wrong")))
                    .await
            })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap(), Verdict::Refused);
    }
    let most = auth.peak.most.load(Ordering::SeqCst);
    assert!(
        (1..=2).contains(&most),
        "peak concurrent verifications {most}"
    );
}

#[tokio::test]
async fn unknown_login_does_the_same_work_as_a_wrong_password() {
    // The same work, not merely similar timings (which a loaded machine blurs):
    // one argon2id verification with the configured users' cost parameters.
    let params = Params::new(2048, 3, 1, None).unwrap();
    let auth = Authenticator::new(&AuthConfig {
        users: vec![
            UserConfig {
                login: "alice".to_owned(),
                password_hash: password::hash_with("pw", params).unwrap(),
                send: None,
                subscribe: None,
                admin: false,
            },
            UserConfig {
                login: "tokens-only".to_owned(),
                password_hash: String::new(),
                send: None,
                subscribe: None,
                admin: false,
            },
        ],
        failure_delay_ms: 0,
        max_failure_delay_ms: 0,
        ..AuthConfig::default()
    })
    .unwrap();
    for login in ["alice", "nobody", "tokens-only"] {
        let v = auth
            .authenticate(peer(), req(Some(login), Some("nope")))
            .await;
        assert_eq!(v, Verdict::Refused, "{login}");
    }
    let costs = auth.peak.costs.lock().unwrap().clone();
    assert_eq!(costs, vec!["argon2id m=2048,t=3,p=1"; 3]);
}

#[tokio::test]
async fn a_reload_rechecks_open_sessions() {
    let mut with_tokens = config();
    with_tokens.token_secret = config::Secret::new(SECRET);
    let old = Authenticator::new(&with_tokens).unwrap();
    let alice = accepted(
        old.authenticate(peer(), req(Some("alice"), Some("wonderland")))
            .await,
    );
    let bob = accepted(
        old.authenticate(peer(), req(Some("bob"), Some("builder")))
            .await,
    );
    let token = token::mint(SECRET.as_bytes(), "carol", unix_now() + 60);
    let carol = accepted(
        old.authenticate(peer(), req(Some("carol"), Some(&token)))
            .await,
    );
    assert!(!alice.permissions.may_send("/topic/public"));

    // alice may send anywhere now, bob is gone, carol (a token login) keeps
    // the default rights, which changed; anonymous access is off.
    let mut next = with_tokens.clone();
    next.users.retain(|u| u.login == "alice");
    next.users[0].send = Some(vec!["**".to_owned()]);
    next.default_send = vec!["/topic/tokens".to_owned()];
    next.users[0].admin = true;
    let new = old.reloaded(&next).unwrap();
    assert!(!old.is_admin("alice") && new.is_admin("alice") && !new.is_admin("bob"));
    let Recheck::Permissions(p) = new.recheck(&alice) else {
        panic!("alice removed")
    };
    assert!(p.may_send("/topic/public") && p.may_send("/queue/x"));
    assert_eq!(new.recheck(&bob), Recheck::UserRemoved);
    let Recheck::Permissions(p) = new.recheck(&carol) else {
        panic!("carol removed")
    };
    assert!(p.may_send("/topic/tokens") && !p.may_send("/topic/public"));
    assert_eq!(
        new.recheck(&Principal::anonymous()),
        Recheck::AnonymousRemoved
    );
    // bob's password session is still no user at the next reload; adding him
    // back restores him.
    let again = new.reloaded(&next).unwrap();
    assert_eq!(again.recheck(&bob), Recheck::UserRemoved);
    let back = again.reloaded(&with_tokens).unwrap();
    assert!(matches!(back.recheck(&bob), Recheck::Permissions(_)));
    // Anonymous access on: anonymous sessions get its rights.
    next.allow_anonymous = true;
    let open = new.reloaded(&next).unwrap();
    let Recheck::Permissions(p) = open.recheck(&Principal::anonymous()) else {
        panic!("anonymous removed")
    };
    assert!(p.may_subscribe("/topic/news") && !p.may_subscribe("/topic/other"));
}

#[tokio::test]
async fn a_token_login_of_a_removed_user_keeps_the_token_rules_at_later_reloads() {
    let mut with_tokens = config();
    with_tokens.token_secret = config::Secret::new(SECRET);
    let mut without_bob = with_tokens.clone();
    without_bob.users.retain(|u| u.login != "bob");
    let old = Authenticator::new(&with_tokens).unwrap();
    let new = old.reloaded(&without_bob).unwrap();
    // After bob's removal a token login for bob is accepted, as any token login.
    let token = token::mint(SECRET.as_bytes(), "bob", unix_now() + 60);
    let bob = accepted(
        new.authenticate(peer(), req(Some("bob"), Some(&token)))
            .await,
    );
    assert_eq!(bob.credential, Credential::Token);
    // The next reloads recheck it as the token login it is, not as a removed user.
    for _ in 0..2 {
        let again = new.reloaded(&without_bob).unwrap();
        let Recheck::Permissions(p) = again.recheck(&bob) else {
            panic!("bob's token login removed")
        };
        assert!(p.may_send("/topic/public") && !p.may_send("/queue/x"));
    }
    // Tokens off: a token login of no user is gone.
    let mut no_tokens = without_bob.clone();
    no_tokens.token_secret = config::Secret::new("");
    let closed = new.reloaded(&no_tokens).unwrap();
    assert_eq!(closed.recheck(&bob), Recheck::UserRemoved);
}

#[tokio::test(start_paused = true)]
async fn a_reload_keeps_the_failures_of_each_address() {
    let mut slow = config();
    slow.failure_delay_ms = 100;
    slow.max_failure_delay_ms = 1000;
    let old = Authenticator::new(&slow).unwrap();
    let refused = old
        .authenticate(peer(), req(Some("alice"), Some("wrong")))
        .await;
    assert_eq!(refused, Verdict::Refused);
    assert_eq!(old.recent_failures(peer().ip()), 1);
    let new = old.reloaded(&slow).unwrap();
    assert_eq!(new.recent_failures(peer().ip()), 1);
    // A reload that breaks nothing stays a new authenticator of its own users.
    let mut fewer = slow.clone();
    fewer.users.clear();
    fewer.allow_anonymous = true;
    assert!(old.reloaded(&fewer).unwrap().allows_anonymous());
}
