//! Tansu 0.6.0 as a child process on a free 127.0.0.1 port, with sqlite storage in a temp dir,
//! optionally with SASL authentication required.

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const SQLITE: &str = "sqlite://tansu.db";
const MEMORY: &str = "memory://tansu/";
const INSTALL: &str = "cargo install --locked tansu --version 0.6.0 --features libsql,dynostore";

/// A running Tansu broker, killed on drop.
#[derive(Debug)]
pub struct Tansu {
    child: Option<Child>,
    port: u16,
    storage: &'static str,
    /// `--authentication`: every request but ApiVersions and the SASL ones needs a login.
    authentication: bool,
    binary: PathBuf,
    _data: tempfile::TempDir,
}

impl Tansu {
    /// Starts Tansu and waits until it accepts connections. Panics with install instructions
    /// when the binary is missing: a test must fail, never skip, without its broker.
    ///
    /// The sqlite file gets one index Tansu 0.6.0 lacks; see `index_headers`.
    pub fn start() -> Self {
        Self::start_with_storage(SQLITE)
    }

    /// Tansu with its in-memory storage engine: nothing survives a broker restart, and it
    /// serves storage calls concurrently, where the sqlite engine serves them one at a time.
    pub fn start_in_memory() -> Self {
        Self::start_with_storage(MEMORY)
    }

    fn start_with_storage(storage: &'static str) -> Self {
        let binary = find_binary();
        let data = tempfile::tempdir().expect("temp dir for tansu storage");
        let mut tansu = Self { child: None, port: free_port(), storage, authentication: false, binary, _data: data };
        tansu.spawn();
        tansu
    }

    /// Tansu with SASL required, knowing each `(name, password)` as a SCRAM-SHA-256 and a
    /// SCRAM-SHA-512 user. SCRAM is its only working mechanism: 0.6.0 builds rsasl without PLAIN.
    ///
    /// An authenticating broker would refuse the unauthenticated AlterUserScramCredentials
    /// request `tansu user create` sends, so the users are created first, on the same sqlite
    /// file, before the restart that turns authentication on.
    pub fn start_with_scram_users(users: &[(&str, &str)]) -> Self {
        let mut tansu = Self::start();
        for (name, password) in users {
            for mechanism in ["scram256", "scram512"] {
                tansu.create_scram_user(name, password, mechanism);
            }
        }
        tansu.authentication = true;
        tansu.restart();
        tansu
    }

    fn create_scram_user(&self, name: &str, password: &str, mechanism: &str) {
        let broker = format!("tcp://127.0.0.1:{}", self.port);
        let output = Command::new(&self.binary)
            .args(["user", "create", name, password, "--mechanism", mechanism, "--broker", &broker])
            .env("RUST_LOG", "warn")
            .output()
            .unwrap_or_else(|e| panic!("cannot run `{} user create`: {e}", self.binary.display()));
        assert!(
            output.status.success(),
            "`tansu user create {name} --mechanism {mechanism}` failed: {}\n{}",
            String::from_utf8_lossy(&output.stderr),
            self.log()
        );
    }

    /// Starts the broker again on the same port and storage, after `stop`.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    fn spawn(&mut self) {
        let url = format!("tcp://127.0.0.1:{}", self.port);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self._data.path().join("tansu.log"))
            .expect("tansu log file");
        // Tansu resolves a sqlite path against its working directory, so run it in the temp dir.
        let child = Command::new(&self.binary)
            .args(["broker", "--listener-url", &url, "--advertised-listener-url", &url])
            .args(["--storage-engine", self.storage])
            .args(self.authentication.then_some("--authentication"))
            .current_dir(self._data.path())
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", self.binary.display()));
        self.child = Some(child);
        self.wait_until_listening();
        if self.storage == SQLITE {
            self.index_headers();
        }
    }

    /// Tansu 0.6.0's sqlite schema has no index on `header (topition, offset_id)`, yet its fetch
    /// looks up each record's headers with one query per record, so every fetched record scans
    /// every header row of every topic (about 7 ms per record at 100k header rows). Its sqlite
    /// engine also serves all storage calls one at a time, group heartbeats included, so one
    /// large fetch of header-carrying records stalls the group coordinator past session
    /// timeouts. The index changes only the query plan, not what any query returns. Tansu
    /// creates its tables before it listens, and `CREATE INDEX IF NOT EXISTS` keeps restarts
    /// on the same file harmless.
    fn index_headers(&self) {
        let path = self._data.path().join("tansu.db");
        let connection = rusqlite::Connection::open(&path)
            .unwrap_or_else(|e| panic!("cannot open Tansu's sqlite file {}: {e}", path.display()));
        connection.busy_timeout(Duration::from_secs(10)).expect("sqlite busy timeout");
        connection
            .execute("CREATE INDEX IF NOT EXISTS header_record ON header (topition, offset_id)", ())
            .unwrap_or_else(|e| panic!("cannot index Tansu's header table in {}: {e}", path.display()));
    }

    /// The broker's log so far (stderr of every run), for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self._data.path().join("tansu.log")).unwrap_or_default()
    }

    /// `bootstrap.servers` for clients.
    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Kills the broker, as an outage would.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn wait_until_listening(&self) {
        let deadline = Instant::now() + Duration::from_secs(15);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if Instant::now() > deadline {
                let log = std::fs::read_to_string(self._data.path().join("tansu.log")).unwrap_or_default();
                panic!("tansu did not listen on port {} within 15 s; its log:\n{log}", self.port);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Tansu {
    fn drop(&mut self) {
        self.stop();
    }
}

fn find_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("TANSU_BIN") {
        return PathBuf::from(path);
    }
    let mut candidates: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).map(|d| d.join("tansu")).collect())
        .unwrap_or_default();
    if let Some(home) = std::env::var_os("CARGO_HOME")
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo").into_os_string()))
    {
        candidates.push(PathBuf::from(home).join("bin").join("tansu"));
    }
    candidates.into_iter().find(|p| p.is_file()).unwrap_or_else(|| {
        panic!("Tansu is not installed, and these tests need a real Kafka-protocol broker. Install it with `{INSTALL}` (about 10 min), or run ./scripts/test, which installs everything the tests need.")
    })
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port")
}
