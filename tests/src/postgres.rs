//! A throwaway PostgreSQL cluster for the cdc tests: Debian's binaries, `initdb` in a temp dir
//! as the `postgres` user (PostgreSQL refuses to run as root), `wal_level = logical`, a free
//! 127.0.0.1 port, passwords required over TCP. Stopped (immediate mode) on drop.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

const INSTALL: &str = "apt-get install postgresql (scripts/test does it)";
/// The superuser's password: TCP connections use scram-sha-256 even for tests.
pub const SUPERUSER_PASSWORD: &str = "postgres-test";

/// A running cluster.
#[derive(Debug)]
pub struct Postgres {
    bin: PathBuf,
    data: PathBuf,
    pub port: u16,
    as_root: bool,
    _dir: tempfile::TempDir,
}

/// The newest `/usr/lib/postgresql/N/bin` with `initdb`, else `pg_config --bindir`.
fn find_bin() -> PathBuf {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return bin;
    }
    let from_pg_config = Command::new("pg_config")
        .arg("--bindir")
        .output()
        .ok()
        .map(|out| PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
        .filter(|bin| bin.join("initdb").exists());
    from_pg_config.unwrap_or_else(|| panic!("PostgreSQL's initdb is not installed: {INSTALL}"))
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port")
}

impl Postgres {
    /// initdb, then start; panics with the server log when either fails.
    pub fn start() -> Self {
        let bin = find_bin();
        let as_root = is_root();
        let dir = tempfile::Builder::new().prefix("cdc-pg-").tempdir().expect("temp dir");
        let data = dir.path().join("data");
        let password_file = dir.path().join("pw");
        std::fs::write(&password_file, SUPERUSER_PASSWORD).expect("password file");
        if as_root {
            let status = Command::new("chown").args(["-R", "postgres:postgres"]).arg(dir.path()).status();
            assert!(status.is_ok_and(|s| s.success()), "cannot chown the cluster dir to postgres: {INSTALL}");
        }
        let postgres = Self { bin, data, port: free_port(), as_root, _dir: dir };
        let data = postgres.data.display().to_string();
        let pwfile = format!("--pwfile={}", password_file.display());
        let init = postgres.run_as_postgres(
            "initdb",
            &[
                "-D",
                &data,
                "-U",
                "postgres",
                &pwfile,
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "--no-sync",
                "-E",
                "UTF8",
                "--locale=C",
            ],
        );
        assert!(init.status.success(), "initdb failed: {}", String::from_utf8_lossy(&init.stderr));
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c wal_level=logical -c max_replication_slots=16 \
             -c max_wal_senders=16 -c fsync=off -c full_page_writes=off -c synchronous_commit=off \
             -c wal_sender_timeout=4s -c shared_buffers=64MB -c track_commit_timestamp=on",
            postgres.port,
            postgres.data.display()
        );
        let log = postgres.log_path().display().to_string();
        let started =
            postgres.run_as_postgres("pg_ctl", &["-D", &data, "-l", &log, "-o", &options, "-w", "-t", "60", "start"]);
        assert!(
            started.status.success(),
            "PostgreSQL did not start: {}\n{}",
            String::from_utf8_lossy(&started.stderr),
            postgres.log()
        );
        postgres.wait_ready();
        postgres
    }

    fn log_path(&self) -> PathBuf {
        self.data.with_file_name("server.log")
    }

    /// The server log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    fn run_as_postgres(&self, tool: &str, args: &[&str]) -> Output {
        let program = self.bin.join(tool);
        let mut command = if self.as_root {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(&program);
            command
        } else {
            Command::new(&program)
        };
        command
            .args(args)
            .current_dir("/")
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}: {INSTALL}", program.display()))
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if self.try_sql("SELECT 1").is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("PostgreSQL did not accept connections: {}", self.log());
    }

    /// A libpq connection string for `user`.
    pub fn connection(&self, user: &str, password: &str) -> String {
        format!("host=127.0.0.1 port={} user={user} password={password} dbname=postgres", self.port)
    }

    /// Runs SQL as the superuser with psql; its unaligned, tuples-only output.
    pub fn sql(&self, sql: &str) -> String {
        self.try_sql(sql).unwrap_or_else(|error| panic!("{sql}\nfailed: {error}"))
    }

    pub fn try_sql(&self, sql: &str) -> Result<String, String> {
        let output = Command::new(self.bin.join("psql"))
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-U", "postgres", "-d", "postgres"])
            .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql])
            .env("PGPASSWORD", SUPERUSER_PASSWORD)
            .output()
            .map_err(|e| format!("cannot run psql: {e}: {INSTALL}"))?;
        if output.status.success() {
            Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
        } else {
            Err(String::from_utf8_lossy(&output.stderr).into_owned())
        }
    }

    pub fn data_dir(&self) -> &Path {
        &self.data
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let data = self.data.display().to_string();
        let _ = self.run_as_postgres("pg_ctl", &["-D", &data, "-m", "immediate", "-w", "stop"]);
    }
}
