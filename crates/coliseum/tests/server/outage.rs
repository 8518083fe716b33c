//! A PostgreSQL outage in the middle of a load, on a throwaway server that
//! this test starts on its own port with PostgreSQL's own `initdb` and
//! `pg_ctl` (never the shared one): deliveries get `503` with `Retry-After`
//! while it is down, and the engine recovers by itself when it returns.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use coliseum_http::settings::Settings;

use crate::support::{DatabaseGuard, assert_problem, key, play, spawn_app_on};

/// A PostgreSQL cluster in a temporary folder, stopped when dropped.
struct ThrowawayPostgres {
    bin: PathBuf,
    data: PathBuf,
    port: u16,
    _dir: tempfile::TempDir,
}

/// PostgreSQL refuses to run as root; as root, its tools run as `postgres`.
fn pg_command(bin: &Path, tool: &str) -> Command {
    let is_root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0"));
    if is_root {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(bin.join(tool));
        command
    } else {
        Command::new(bin.join(tool))
    }
}

fn run(mut command: Command, what: &str) {
    let output = command.output().unwrap_or_else(|e| panic!("{what}: cannot run: {e}"));
    assert!(
        output.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

impl ThrowawayPostgres {
    fn init() -> Self {
        let bindir = Command::new("pg_config")
            .arg("--bindir")
            .output()
            .expect("pg_config is installed (PostgreSQL's server package)");
        let bin = PathBuf::from(String::from_utf8_lossy(&bindir.stdout).trim());
        assert!(bin.join("initdb").exists(), "initdb is not in {}", bin.display());
        let dir = tempfile::Builder::new()
            .prefix("coliseum-pg-")
            .tempdir_in("/tmp")
            .expect("temp dir");
        let _ = Command::new("chmod").arg("755").arg(dir.path()).status();
        let _ = Command::new("chown")
            .args(["postgres:postgres"])
            .arg(dir.path())
            .status();
        let data = dir.path().join("data");
        let mut initdb = pg_command(&bin, "initdb");
        initdb
            .args(["--auth=trust", "--username=postgres", "--no-sync", "-D"])
            .arg(&data);
        run(initdb, "initdb");
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let server = Self {
            bin,
            data,
            port,
            _dir: dir,
        };
        server.start();
        server
    }

    fn start(&self) {
        let mut command = pg_command(&self.bin, "pg_ctl");
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -k {}",
            self.port,
            self.data.display()
        );
        command
            .args(["-w", "-t", "60", "-D"])
            .arg(&self.data)
            .args(["-o", &options, "-l"])
            .arg(self.data.join("log"))
            .arg("start");
        run(command, "pg_ctl start");
    }

    fn stop(&self) {
        let mut command = pg_command(&self.bin, "pg_ctl");
        command
            .args(["-w", "-D"])
            .arg(&self.data)
            .args(["-m", "immediate", "stop"]);
        run(command, "pg_ctl stop");
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for ThrowawayPostgres {
    fn drop(&mut self) {
        let mut command = pg_command(&self.bin, "pg_ctl");
        command
            .args(["-w", "-D"])
            .arg(&self.data)
            .args(["-m", "immediate", "stop"]);
        let _ = command.output();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_outage_gives_503s_and_the_engine_recovers_by_itself() {
    let postgres = ThrowawayPostgres::init();
    let dir = tempfile::tempdir().expect("temp dir");
    let app = spawn_app_on(Settings::for_tests(&postgres.url(), key()), DatabaseGuard::Sqlite(dir)).await;
    assert_eq!(app.deliver(&play("before")).await.status(), 202);

    postgres.stop();
    let response = app.deliver(&play("during")).await;
    assert!(
        response.headers().get("retry-after").is_some(),
        "503 says when to retry"
    );
    let problem = assert_problem(response, 503, "unavailable").await;
    assert!(
        problem["detail"]
            .as_str()
            .unwrap_or("")
            .contains("nothing in this delivery was stored")
    );
    assert_problem(app.get("/readyz", None).await, 503, "unavailable").await;

    postgres.start();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let status = app.deliver(&play("after")).await.status();
        if status == 202 {
            break;
        }
        assert_eq!(status, 503, "while recovering, only 503s");
        assert!(Instant::now() < deadline, "the engine did not recover within 60 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(app.get("/readyz", None).await.status(), 200);
    let mut stored: Vec<String> = app
        .store
        .read_after(0, 10)
        .await
        .expect("read")
        .into_iter()
        .map(|s| s.entry.event_id)
        .collect();
    stored.sort();
    assert_eq!(stored, ["after", "before"], "the refused delivery was not stored");
    app.stop().await;
}
