//! A throwaway PostgreSQL cluster for tests: `initdb` into a temporary directory, the server on
//! a free loopback port and a private Unix socket, stopped (and its files removed) on drop.
//! As root the server runs as the `postgres` user (PostgreSQL refuses root). The superuser
//! connects over the socket without a password; TCP logins need one (scram-sha-256). Shared by
//! the store's and xtask's tests (`#[path]`-included).

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A running test cluster.
pub struct Cluster {
    dir: tempfile::TempDir,
    bin: PathBuf,
    run_as: Option<String>,
    pub port: u16,
    pub tls: bool,
}

/// The PostgreSQL server binaries: `EDGEBENCH_PG_BIN`, else the newest
/// `/usr/lib/postgresql/<version>/bin` (Debian's layout).
fn binaries() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("EDGEBENCH_PG_BIN") {
        let dir = PathBuf::from(dir);
        return dir.join("initdb").is_file().then_some(dir);
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").is_file().then_some((v, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

/// uid and gid of `user` from /etc/passwd.
fn ids(user: &str) -> Option<(u32, u32)> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.first() == Some(&user))
            .then(|| Some((f.get(2)?.parse().ok()?, f.get(3)?.parse().ok()?)))?
    })
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

impl Cluster {
    /// Starts a cluster; `None` (said on stderr) when PostgreSQL is not installed, unless the
    /// run requires every real component (`EDGEBENCH_REQUIRE_MODELS=1`, set by `cargo xtask
    /// test`, whose setup installs it), then it panics.
    pub fn start() -> Option<Self> {
        Self::start_with(false)
    }

    /// [`Self::start`] with TLS on (a self-signed certificate for `localhost`, made by the
    /// `openssl` command): [`Self::certificate`] is its file.
    pub fn start_with_tls() -> Option<Self> {
        Self::start_with(true)
    }

    fn start_with(tls: bool) -> Option<Self> {
        let Some(bin) = binaries() else {
            assert!(
                std::env::var("EDGEBENCH_REQUIRE_MODELS").as_deref() != Ok("1"),
                "PostgreSQL server binaries not found (install Debian's postgresql, or run `cargo xtask setup`)"
            );
            eprintln!("skipped: PostgreSQL server binaries not found");
            return None;
        };
        let dir = tempfile::tempdir().expect("tempdir");
        let run_as = is_root().then(|| "postgres".to_owned());
        let data = dir.path().join("data");
        let sock = dir.path().join("sock");
        std::fs::create_dir_all(&data).expect("data dir");
        std::fs::create_dir_all(&sock).expect("socket dir");
        let pwfile = dir.path().join("pw");
        std::fs::write(&pwfile, "superuser-test-only\n").expect("pwfile");
        if let Some(user) = &run_as {
            use std::os::unix::fs::PermissionsExt;
            let (uid, gid) = ids(user).expect("the postgres user exists");
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
                .expect("chmod");
            for p in [&data, &sock, &pwfile] {
                std::os::unix::fs::chown(p, Some(uid), Some(gid)).expect("chown");
            }
        }
        let cluster = Self {
            port: free_port(),
            dir,
            bin,
            run_as,
            tls,
        };
        cluster.run(
            "initdb",
            &[
                "-D",
                &data.display().to_string(),
                "-U",
                "postgres",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                &format!("--pwfile={}", pwfile.display()),
                "--locale=C",
                "--encoding=UTF8",
                "--no-sync",
            ],
        );
        if tls {
            let (crt, key) = (data.join("server.crt"), data.join("server.key"));
            let ok = Command::new("openssl")
                .args([
                    "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                ])
                .args([
                    "-subj",
                    "/CN=localhost",
                    "-addext",
                    "subjectAltName=DNS:localhost",
                ])
                .arg("-keyout")
                .arg(&key)
                .arg("-out")
                .arg(&crt)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .expect("openssl runs")
                .success();
            assert!(ok, "openssl made no certificate");
            std::fs::copy(&crt, cluster.certificate()).expect("copy the certificate");
            if let Some(user) = &cluster.run_as {
                use std::os::unix::fs::PermissionsExt;
                let (uid, gid) = ids(user).expect("postgres user");
                for p in [&crt, &key] {
                    std::os::unix::fs::chown(p, Some(uid), Some(gid)).expect("chown");
                }
                std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600))
                    .expect("chmod");
            }
        }
        cluster.pg_ctl("start");
        Some(cluster)
    }

    /// The server's certificate (TLS clusters), readable by the test.
    pub fn certificate(&self) -> PathBuf {
        self.dir.path().join("server-cert.pem")
    }

    pub fn socket_dir(&self) -> PathBuf {
        self.dir.path().join("sock")
    }

    /// A libpq connection string for the superuser over the Unix socket (no password).
    pub fn admin(&self, dbname: &str) -> String {
        format!(
            "host={} port={} user=postgres dbname={dbname} sslmode=disable",
            self.socket_dir().display(),
            self.port
        )
    }

    /// A connection string for `user` over TCP on 127.0.0.1 (a password is needed).
    pub fn tcp(&self, user: &str, dbname: &str) -> String {
        format!("postgres://{user}@127.0.0.1:{}/{dbname}", self.port)
    }

    /// Runs SQL as the superuser, in database `dbname`.
    pub fn sql(&self, dbname: &str, sql: &str) {
        let mut client = postgres::Client::connect(&self.admin(dbname), postgres::NoTls)
            .expect("superuser connects over the socket");
        client.batch_execute(sql).expect(sql);
    }

    /// A new empty database.
    pub fn create_database(&self, name: &str) -> String {
        self.sql("postgres", &format!("CREATE DATABASE {name}"));
        self.admin(name)
    }

    /// Restarts the server (every connection is cut).
    pub fn restart(&self) {
        self.pg_ctl("restart");
    }

    fn pg_ctl(&self, action: &str) {
        let data = self.dir.path().join("data");
        let mut options = format!(
            "-c listen_addresses=127.0.0.1 -c port={} -c unix_socket_directories={} \
             -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=60",
            self.port,
            self.socket_dir().display()
        );
        if self.tls {
            options.push_str(" -c ssl=on");
        }
        let log = self.socket_dir().join("server.log");
        self.run(
            "pg_ctl",
            &[
                "-D",
                &data.display().to_string(),
                "-o",
                &options,
                "-l",
                &log.display().to_string(),
                "-m",
                "fast",
                "-w",
                action,
            ],
        );
    }

    /// `tool` of the server binaries, as the cluster's user.
    fn command(&self, tool: &str) -> Command {
        let program = self.bin.join(tool);
        match &self.run_as {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(&program);
                c
            }
            None => Command::new(&program),
        }
    }

    fn run(&self, tool: &str, args: &[&str]) {
        let out = self
            .command(tool)
            .args(args)
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("{tool} starts: {e}"));
        let log = std::fs::read_to_string(self.socket_dir().join("server.log")).unwrap_or_default();
        assert!(
            out.status.success(),
            "{tool} {args:?} failed: {}\n{}\nserver log:\n{log}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let data = self.dir.path().join("data");
        let _ = self
            .command("pg_ctl")
            .arg("-D")
            .arg(&data)
            .args(["-m", "immediate", "-w", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}
