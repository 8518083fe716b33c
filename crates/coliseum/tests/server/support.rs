//! The test harness: `spawn_app(Backend)` starts an engine on a free port
//! with its own fresh database and gives typed helpers to talk to it.

use std::sync::Arc;

use coliseum_domain::plans::{Plan, Role};
use coliseum_http::app::Application;
use coliseum_http::sessions;
use coliseum_http::settings::Settings;
use coliseum_http::webhook::WebhookKey;
use coliseum_store::{NewApiKey, NewSession, NewUser, Store, User};
use coliseum_store_postgres::testing::TestDatabase;
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Runs an async test body once per backend.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::support::Backend::Sqlite).await;
                }
            )+
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::support::Backend::Postgres).await;
                }
            )+
        }
    };
}

/// Keeps a test's database alive.
pub enum DatabaseGuard {
    Sqlite(#[allow(dead_code)] tempfile::TempDir),
    Postgres(#[allow(dead_code)] TestDatabase),
}

/// A fresh database URL for `backend`.
pub async fn fresh_database(backend: Backend) -> (String, DatabaseGuard) {
    match backend {
        Backend::Sqlite => {
            let dir = tempfile::tempdir().expect("temp dir");
            let url = format!("sqlite://{}", dir.path().join("coliseum.db").display());
            (url, DatabaseGuard::Sqlite(dir))
        }
        Backend::Postgres => {
            let database = TestDatabase::create().await;
            (database.url.clone(), DatabaseGuard::Postgres(database))
        }
    }
}

pub const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// The audit record of something a test sets up straight in the store.
pub fn set_up(action: &str) -> coliseum_store::AuditRecord {
    coliseum_store::AuditRecord {
        id: 0,
        at: time::OffsetDateTime::now_utc(),
        actor: "test".to_owned(),
        action: format!("test.{action}"),
        subject: "test".to_owned(),
        request_id: String::new(),
        detail: "{}".to_owned(),
    }
}

/// For set-up whose outcome needs no record.
pub fn unrecorded<T>(_: &T) -> Option<coliseum_store::AuditRecord> {
    None
}

pub fn key() -> WebhookKey {
    WebhookKey::parse(SECRET).expect("valid secret")
}

pub struct TestApp {
    pub base: String,
    /// The engine's database, for commands run against it.
    pub database_url: String,
    pub client: reqwest::Client,
    pub store: Arc<dyn Store>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
    /// The session of [`TestApp::reader`], made on first use.
    reader: tokio::sync::OnceCell<String>,
    _database: DatabaseGuard,
}

pub async fn spawn_app(backend: Backend) -> TestApp {
    let (url, guard) = fresh_database(backend).await;
    spawn_app_on(Settings::for_tests(&url, key()), guard).await
}

/// An engine whose clock stands still at `now` (moved with `clock.set`).
pub async fn spawn_app_with_clock(backend: Backend, clock: Arc<coliseum_domain::clock::FixedClock>) -> TestApp {
    spawn_app_with_clock_and(backend, clock, |_| {}).await
}

/// An engine whose clock stands one second before the next 5-minute
/// boundary, and that boundary. Every plan but Enterprise reads the state
/// of its last boundary: data processed now, and the clock then set past
/// the boundary, is what they all read. Deliveries signed on the real clock
/// stay within 5 minutes of the engine's either way.
pub async fn spawn_app_before_a_boundary(
    backend: Backend,
    change: impl FnOnce(&mut Settings),
) -> (TestApp, Arc<coliseum_domain::clock::FixedClock>, time::OffsetDateTime) {
    let mut now = time::OffsetDateTime::now_utc();
    if now.unix_timestamp().rem_euclid(300) < 10 {
        tokio::time::sleep(std::time::Duration::from_secs(10)).await;
        now = time::OffsetDateTime::now_utc();
    }
    let boundary = time::OffsetDateTime::from_unix_timestamp(now.unix_timestamp().div_euclid(300) * 300 + 300)
        .expect("a boundary");
    let clock = Arc::new(coliseum_domain::clock::FixedClock::new(
        boundary - time::Duration::seconds(1),
    ));
    let app = spawn_app_with_clock_and(backend, clock.clone(), change).await;
    (app, clock, boundary)
}

/// Moves `clock` past `boundary` once everything stored is processed and
/// scored, so that the state every plan but Enterprise reads from then on
/// holds it.
pub async fn past_the_boundary(
    app: &TestApp,
    clock: &coliseum_domain::clock::FixedClock,
    boundary: time::OffsetDateTime,
) {
    app.published().await;
    clock.set(boundary + time::Duration::seconds(1));
}

/// An engine on `clock` with settings changed by `change`.
pub async fn spawn_app_with_clock_and(
    backend: Backend,
    clock: Arc<coliseum_domain::clock::FixedClock>,
    change: impl FnOnce(&mut Settings),
) -> TestApp {
    let (url, guard) = fresh_database(backend).await;
    let mut settings = Settings::for_tests(&url, key());
    change(&mut settings);
    let application = Application::build_with_clock(settings, clock)
        .await
        .expect("the engine starts");
    serve(application, guard, url)
}

/// An engine with settings changed by `change`.
pub async fn spawn_app_with(backend: Backend, change: impl FnOnce(&mut Settings)) -> TestApp {
    let (url, guard) = fresh_database(backend).await;
    let mut settings = Settings::for_tests(&url, key());
    change(&mut settings);
    spawn_app_on(settings, guard).await
}

/// One Argon2id hash of [`PASSWORD`] for users made straight in the store:
/// hashing is slow in test builds, and these users need not differ.
fn shared_password_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| sessions::hash_password(PASSWORD).expect("hash"))
}

pub const PASSWORD: &str = "a long enough password";

pub async fn spawn_app_on(settings: Settings, guard: DatabaseGuard) -> TestApp {
    let database_url = settings.database_url.clone();
    let application = Application::build(settings).await.expect("the engine starts");
    serve(application, guard, database_url)
}

fn serve(application: Application, guard: DatabaseGuard, database_url: String) -> TestApp {
    let base = format!("http://{}", application.local_addr());
    let store = application.state().store.clone();
    let (shutdown, signal) = oneshot::channel::<()>();
    let task = tokio::spawn(application.run_until(async move {
        let _ = signal.await;
    }));
    TestApp {
        base,
        database_url,
        client: reqwest::Client::new(),
        store,
        shutdown: Some(shutdown),
        task: Some(task),
        reader: tokio::sync::OnceCell::new(),
        _database: guard,
    }
}

/// An RFC 3339 instant a response states.
pub fn parse_rfc3339(text: &str) -> time::OffsetDateTime {
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).expect("an RFC 3339 instant")
}

/// A play with this id, timestamped a minute ago.
pub fn play(event_id: &str) -> Value {
    let at = time::OffsetDateTime::now_utc() - time::Duration::minutes(1);
    json!({
        "event_id": event_id,
        "schema_version": 1,
        "type": "audio.play",
        "timestamp": at.format(&time::format_description::well_known::Rfc3339).expect("format"),
        "user_id": "fan_1",
        "artist_id": "art_1",
        "metadata": {"city": "Lagos", "genre": "afrobeats"},
        "engagement": {"duration_ms": 183000}
    })
}

/// The three Standard Webhooks headers for a body, signed now.
pub fn signed_headers(body: &[u8]) -> Vec<(&'static str, String)> {
    let id = format!("msg_{}", rand_id());
    let timestamp = time::OffsetDateTime::now_utc().unix_timestamp();
    let signature = key().sign(&id, timestamp, body);
    vec![
        ("webhook-id", id),
        ("webhook-timestamp", timestamp.to_string()),
        ("webhook-signature", signature),
    ]
}

fn rand_id() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

impl TestApp {
    /// Posts a signed delivery.
    pub async fn deliver(&self, body: &Value) -> reqwest::Response {
        let bytes = body.to_string().into_bytes();
        let mut request = self
            .client
            .post(format!("{}/v1/passport/events", self.base))
            .header("content-type", "application/json");
        for (name, value) in signed_headers(&bytes) {
            request = request.header(name, value);
        }
        request.body(bytes).send().await.expect("request sent")
    }

    /// Waits (bounded) until everything stored is processed and the
    /// published DNA scores reflect it, as a live (Enterprise) reader sees
    /// them.
    pub async fn published(&self) {
        self.processed().await;
        let head = self.store.head_seq().await.expect("head");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        // Each poll a read of its own (300 of them, more than fit in the
        // deadline): an engine that shares bodies for a while would
        // otherwise answer every poll with the first one's.
        for poll in 0_u32.. {
            let range = ["7d", "30d", "all"][(poll / 100 % 3) as usize];
            let body: Value = self
                .get(
                    &format!("/v1/dna/leaderboards/overall?range={range}&limit={}", 1 + poll % 100),
                    Some(self.reader().await),
                )
                .await
                .json()
                .await
                .expect("json");
            if body["watermark"].as_i64() == Some(head) {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "scores were not published: {body}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(70)).await;
        }
    }

    /// Waits (bounded) until the processor has consumed everything stored.
    pub async fn processed(&self) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let head = self.store.head_seq().await.expect("head");
            let state = self.store.pipeline_state().await.expect("state");
            if state.processed_seq >= head {
                return;
            }
            assert!(std::time::Instant::now() < deadline, "the processor did not catch up");
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }

    pub async fn entries(&self) -> i64 {
        self.store.count_entries().await.expect("count")
    }

    /// Creates a Pro user with this role; returns its email and password.
    pub async fn create_user(&self, role: Role) -> (String, &'static str) {
        self.create_user_with(role, Plan::Pro, &[]).await
    }

    /// Creates a user with this role, plan and linked artists; returns its email and password.
    pub async fn create_user_with(&self, role: Role, plan: Plan, artists: &[&str]) -> (String, &'static str) {
        let email = format!("{}-{}@example.com", role.as_str(), rand_id());
        let password = "a long enough password";
        self.store
            .upsert_user(&NewUser {
                email: email.clone(),
                password_hash: sessions::hash_password(password).expect("hash"),
                role,
                plan,
                artists: artists.iter().map(|a| (*a).to_owned()).collect(),
                live_events: vec![],
            })
            .await
            .expect("user");
        (email, password)
    }

    /// Creates a Pro user and signs in; returns the `Cookie` header value.
    pub async fn sign_in_as(&self, role: Role) -> String {
        self.sign_in_with(role, Plan::Pro, &[]).await
    }

    /// Creates a user with this role, plan and linked artists and signs in;
    /// returns the `Cookie` header value.
    pub async fn sign_in_with(&self, role: Role, plan: Plan, artists: &[&str]) -> String {
        let (email, password) = self.create_user_with(role, plan, artists).await;
        self.sign_in_existing(&email, password).await
    }

    /// Signs in as an existing user; returns the `Cookie` header value.
    pub async fn sign_in_existing(&self, email: &str, password: &str) -> String {
        let response = self
            .client
            .post(format!("{}/v1/auth/login", self.base))
            .json(&json!({"email": email, "password": password}))
            .send()
            .await
            .expect("login");
        assert_eq!(response.status(), 200);
        let cookie = response
            .headers()
            .get("set-cookie")
            .expect("a session cookie")
            .to_str()
            .expect("ascii");
        cookie.split(';').next().expect("name=value").to_owned()
    }

    /// The `Cookie` of an Enterprise admin, who may read everything: for
    /// tests about what reads return rather than who may make them.
    pub async fn reader(&self) -> &str {
        self.reader
            .get_or_init(|| self.sign_in_with(Role::Admin, Plan::Enterprise, &[]))
            .await
    }

    pub async fn get(&self, path: &str, cookie: Option<&str>) -> reqwest::Response {
        let mut request = self.client.get(format!("{}{path}", self.base));
        if let Some(cookie) = cookie {
            request = request.header("cookie", cookie);
        }
        request.send().await.expect("request sent")
    }

    /// A user made straight in the store (password [`PASSWORD`]).
    pub async fn make_user(&self, role: Role, plan: Plan, artists: &[&str], live_events: &[&str]) -> User {
        self.store
            .upsert_user(&NewUser {
                email: format!("{}-{}-{}@example.com", role.as_str(), plan.as_str(), rand_id()),
                password_hash: shared_password_hash().to_owned(),
                role,
                plan,
                artists: artists.iter().map(|a| (*a).to_owned()).collect(),
                live_events: live_events.iter().map(|e| (*e).to_owned()).collect(),
            })
            .await
            .expect("user")
    }

    /// A session made straight in the store, ending `lifetime` from now
    /// (negative: already ended); returns the `Cookie` header value.
    pub async fn session_for(&self, user: &User, lifetime: time::Duration) -> String {
        let (token, token_hash) = sessions::new_session_token();
        let now = time::OffsetDateTime::now_utc();
        self.store
            .create_session(
                &NewSession {
                    token_hash,
                    user_id: user.id,
                    created_at: now - time::Duration::days(30),
                    expires_at: now + lifetime,
                },
                &set_up("session"),
            )
            .await
            .expect("session");
        format!("{}={token}", sessions::SESSION_COOKIE)
    }

    /// An API key made straight in the store; returns the key.
    pub async fn api_key_for(&self, user: &User) -> (String, i64) {
        let key = coliseum_http::credentials::new_api_key();
        let stored = self
            .store
            .create_api_key(
                &NewApiKey {
                    user_id: user.id,
                    name: "test".to_owned(),
                    key_hash: key.hash,
                    prefix: key.prefix,
                    created_at: time::OffsetDateTime::now_utc(),
                },
                &unrecorded,
            )
            .await
            .expect("key");
        (key.key, stored.id)
    }

    /// A GET with `Authorization: Bearer`.
    pub async fn get_bearer(&self, path: &str, token: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.base))
            .bearer_auth(token)
            .send()
            .await
            .expect("request sent")
    }

    /// The CSRF token of a browser session (its `Cookie` header value).
    pub async fn csrf(&self, cookie: &str) -> String {
        let response = self.get("/v1/auth/csrf", Some(cookie)).await;
        assert_eq!(response.status(), 200, "a CSRF token for a live session");
        let body: Value = response.json().await.expect("json");
        body["token"].as_str().expect("token").to_owned()
    }

    /// A request with `method` as a browser session, CSRF token included.
    pub async fn send_as(
        &self,
        method: reqwest::Method,
        path: &str,
        cookie: &str,
        body: Option<&Value>,
    ) -> reqwest::Response {
        let token = self.csrf(cookie).await;
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.base))
            .header("cookie", cookie)
            .header("x-csrf-token", token);
        if let Some(body) = body {
            request = request.json(body);
        }
        request.send().await.expect("request sent")
    }

    /// A POST as a browser session, CSRF token included.
    pub async fn post_as(&self, path: &str, cookie: &str, body: Option<&Value>) -> reqwest::Response {
        self.send_as(reqwest::Method::POST, path, cookie, body).await
    }

    /// Stops the engine gracefully and waits for it.
    pub async fn stop(mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.expect("joined").expect("clean shutdown");
        }
    }
}

/// Asserts a response is a problem document with this status and type slug.
pub async fn assert_problem(response: reqwest::Response, status: u16, slug: &str) -> Value {
    assert_eq!(response.status().as_u16(), status);
    assert_eq!(
        response.headers().get("content-type").and_then(|v| v.to_str().ok()),
        Some("application/problem+json")
    );
    let problem: Value = response.json().await.expect("a JSON problem document");
    assert_eq!(
        problem["type"],
        format!("https://coliseum.dev/problems/{slug}"),
        "{problem}"
    );
    assert_eq!(problem["status"], status);
    assert!(problem["title"].as_str().is_some_and(|t| !t.is_empty()));
    assert!(problem["detail"].as_str().is_some_and(|d| !d.is_empty()));
    problem
}
