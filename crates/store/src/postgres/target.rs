//! Which PostgreSQL server and database: a connection string (`postgres://…` or libpq's
//! `key=value` form) completed from libpq's environment (`PGHOST`, `PGPORT`, `PGUSER`,
//! `PGDATABASE`, `PGSSLMODE`, `PGSSLROOTCERT`), the password from `PGPASSWORD` or the password
//! file (`PGPASSFILE`, else `~/.pgpass`), never from the string itself: a connection string is
//! typed on command lines, which every user of the host can read in `/proc`.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use postgres::config::Host;

/// How the connection is encrypted and the server authenticated (libpq's `sslmode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    Disable,
    /// TLS when the server offers it (libpq's default); the server is not authenticated.
    Prefer,
    /// TLS or no connection; the server is authenticated only against `sslrootcert` if given.
    Require,
    /// TLS, the server's certificate checked against `sslrootcert` (or the system's roots).
    VerifyCa,
    /// As `VerifyCa`, and the certificate names the host connected to.
    VerifyFull,
}

impl TlsMode {
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "disable" => Self::Disable,
            "prefer" | "allow" => Self::Prefer,
            "require" => Self::Require,
            "verify-ca" => Self::VerifyCa,
            "verify-full" => Self::VerifyFull,
            _ => return None,
        })
    }

    fn as_str(self) -> &'static str {
        match self {
            Self::Disable => "disable",
            Self::Prefer => "prefer",
            Self::Require => "require",
            Self::VerifyCa => "verify-ca",
            Self::VerifyFull => "verify-full",
        }
    }
}

/// A PostgreSQL database to connect to, password resolved, printable without secrets.
#[derive(Clone)]
pub struct PgTarget {
    pub(crate) config: postgres::Config,
    pub(crate) tls: TlsMode,
    pub(crate) root_cert: Option<PathBuf>,
    shown: String,
}

impl std::fmt::Debug for PgTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // `postgres::Config`'s own Debug redacts the password too; this prints less.
        f.debug_tuple("PgTarget").field(&self.shown).finish()
    }
}

impl std::fmt::Display for PgTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.shown)
    }
}

/// Whether `s` names a PostgreSQL database rather than a SQLite file: a `postgres://` or
/// `postgresql://` URL, or libpq's `key=value` form starting with one of its keys.
#[must_use]
pub fn is_connection_string(s: &str) -> bool {
    const KEYS: [&str; 8] = [
        "host",
        "hostaddr",
        "port",
        "dbname",
        "user",
        "sslmode",
        "application_name",
        "options",
    ];
    s.starts_with("postgres://")
        || s.starts_with("postgresql://")
        || s.split_once('=')
            .is_some_and(|(key, _)| KEYS.contains(&key.trim()))
}

/// Why a connection string can't be used. Never quotes the string (it may hold a password).
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error(
        "the PostgreSQL connection string holds a password; put it in PGPASSWORD or ~/.pgpass \
         instead (a command line is readable by every user of the host)"
    )]
    PasswordInString,
    #[error("the PostgreSQL connection string does not parse: {0}")]
    Parse(String),
    #[error("sslmode `{0}` is not one of disable, allow, prefer, require, verify-ca, verify-full")]
    SslMode(String),
}

impl FromStr for PgTarget {
    type Err = TargetError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse_with(s, &|k| std::env::var(k).ok())
    }
}

impl PgTarget {
    /// Parses `s`, taking libpq's environment variables from `env`.
    pub fn parse_with(s: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Self, TargetError> {
        // tokio-postgres knows sslmode disable/prefer/require only, and no sslrootcert: both
        // are taken out here and applied by edgebench's TLS connector.
        let (rest, extracted) = extract(s, &["sslmode", "sslrootcert"]);
        let mut config =
            postgres::Config::from_str(&rest).map_err(|e| TargetError::Parse(e.to_string()))?;
        if config.get_password().is_some() {
            return Err(TargetError::PasswordInString);
        }
        let lookup = |key: &str, var: &str| {
            extracted
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.clone())
                .or_else(|| env(var))
        };
        let tls_name = lookup("sslmode", "PGSSLMODE").unwrap_or_else(|| "prefer".to_owned());
        let tls = TlsMode::parse(&tls_name).ok_or(TargetError::SslMode(tls_name))?;
        let root_cert = lookup("sslrootcert", "PGSSLROOTCERT").map(PathBuf::from);
        if config.get_hosts().is_empty() {
            match env("PGHOST") {
                Some(h) => config.host(&h),
                None if Path::new("/var/run/postgresql").is_dir() => {
                    config.host_path("/var/run/postgresql")
                }
                None => config.host("localhost"),
            };
        }
        if config.get_ports().is_empty() {
            let port = env("PGPORT").and_then(|p| p.parse().ok()).unwrap_or(5432);
            config.port(port);
        }
        if config.get_user().is_none() {
            let user = env("PGUSER")
                .or_else(|| env("USER"))
                .unwrap_or_else(|| "postgres".to_owned());
            config.user(&user);
        }
        if config.get_dbname().is_none() {
            let db = env("PGDATABASE")
                .or_else(|| config.get_user().map(str::to_owned))
                .unwrap_or_default();
            config.dbname(&db);
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(10));
        }
        if config.get_application_name().is_none() {
            config.application_name("edgebench");
        }
        config.ssl_mode(match tls {
            TlsMode::Disable => postgres::config::SslMode::Disable,
            TlsMode::Prefer => postgres::config::SslMode::Prefer,
            _ => postgres::config::SslMode::Require,
        });
        let host = config
            .get_hosts()
            .first()
            .map_or_else(String::new, |h| match h {
                Host::Tcp(name) => name.clone(),
                Host::Unix(path) => path.display().to_string(),
            });
        let port = config.get_ports().first().copied().unwrap_or(5432);
        let user = config.get_user().unwrap_or_default().to_owned();
        let dbname = config.get_dbname().unwrap_or_default().to_owned();
        if let Some(password) = env("PGPASSWORD").or_else(|| {
            let file = env("PGPASSFILE")
                .map(PathBuf::from)
                .or_else(|| env("HOME").map(|h| Path::new(&h).join(".pgpass")))?;
            password_file_entry(&file, &host, port, &dbname, &user)
        }) {
            config.password(password);
        }
        let shown = format!(
            "postgres://{user}@{}:{port}/{dbname} (sslmode={})",
            if host.starts_with('/') {
                format!("[{host}]")
            } else {
                host.clone()
            },
            tls.as_str()
        );
        Ok(Self {
            config,
            tls,
            root_cert,
            shown,
        })
    }

    /// The TLS connector this target's `sslmode` asks for.
    pub(crate) fn connector(
        &self,
    ) -> Result<postgres_native_tls::MakeTlsConnector, Box<dyn std::error::Error + Send + Sync>>
    {
        let mut builder = native_tls::TlsConnector::builder();
        match (self.tls, &self.root_cert) {
            (TlsMode::VerifyFull, _) => {}
            // libpq: with a root certificate, require verifies the chain like verify-ca.
            (TlsMode::VerifyCa, _)
            | (TlsMode::Require | TlsMode::Prefer | TlsMode::Disable, Some(_)) => {
                builder.danger_accept_invalid_hostnames(true);
            }
            (TlsMode::Require | TlsMode::Prefer | TlsMode::Disable, None) => {
                builder
                    .danger_accept_invalid_certs(true)
                    .danger_accept_invalid_hostnames(true);
            }
        }
        if let Some(path) = &self.root_cert {
            let pem = std::fs::read(path)
                .map_err(|e| format!("reading sslrootcert {}: {e}", path.display()))?;
            builder.add_root_certificate(native_tls::Certificate::from_pem(&pem)?);
        }
        Ok(postgres_native_tls::MakeTlsConnector::new(builder.build()?))
    }
}

/// Takes `keys` out of a connection string (URL query parameters or `key=value` words).
fn extract(s: &str, keys: &[&str]) -> (String, Vec<(String, String)>) {
    let mut taken = Vec::new();
    if s.starts_with("postgres://") || s.starts_with("postgresql://") {
        let Some((base, query)) = s.split_once('?') else {
            return (s.to_owned(), taken);
        };
        let kept: Vec<&str> = query
            .split('&')
            .filter(|pair| {
                let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                if keys.contains(&k) {
                    taken.push((k.to_owned(), v.to_owned()));
                    false
                } else {
                    true
                }
            })
            .collect();
        let rest = if kept.is_empty() {
            base.to_owned()
        } else {
            format!("{base}?{}", kept.join("&"))
        };
        (rest, taken)
    } else {
        let kept: Vec<&str> = s
            .split_whitespace()
            .filter(|word| {
                let (k, v) = word.split_once('=').unwrap_or((word, ""));
                if keys.contains(&k.trim()) {
                    taken.push((k.trim().to_owned(), v.trim_matches('\'').to_owned()));
                    false
                } else {
                    true
                }
            })
            .collect();
        (kept.join(" "), taken)
    }
}

/// The password for (host, port, database, user) in a libpq password file: lines
/// `host:port:database:user:password`, `*` matching anything, `\` escaping `:` and `\`. Like
/// libpq, a file that its group or others can read is ignored (said once on stderr).
fn password_file_entry(
    file: &Path,
    host: &str,
    port: u16,
    dbname: &str,
    user: &str,
) -> Option<String> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(file).ok()?;
    if meta.permissions().mode() & 0o077 != 0 {
        eprintln!(
            "warning: password file {} has group or world access; permissions should be u=rw (0600) or less; ignored",
            file.display()
        );
        return None;
    }
    let text = std::fs::read_to_string(file).ok()?;
    // libpq matches a Unix-socket connection against `localhost` too.
    let hosts: Vec<&str> = if host.starts_with('/') {
        vec![host, "localhost"]
    } else {
        vec![host]
    };
    let port = port.to_string();
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#') && !l.trim().is_empty())
        .find_map(|line| {
            let fields = split_escaped(line);
            let [h, p, d, u, password] = fields.as_slice() else {
                return None;
            };
            let matches = |field: &str, value: &str| field == "*" || field == value;
            (hosts.iter().any(|value| matches(h, value))
                && matches(p, &port)
                && matches(d, dbname)
                && matches(u, user))
            .then(|| password.clone())
        })
}

fn split_escaped(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let (Some(next), Some(f)) = (chars.next(), fields.last_mut()) {
                    f.push(next);
                }
            }
            ':' if fields.len() < 5 => fields.push(String::new()),
            other => {
                if let Some(f) = fields.last_mut() {
                    f.push(other);
                }
            }
        }
    }
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn a_password_in_the_string_is_refused_without_quoting_it() {
        for s in [
            "postgres://lab:hunter2@db.example/edgebench",
            "host=db.example user=lab password=hunter2 dbname=edgebench",
        ] {
            let err = PgTarget::parse_with(s, &env(&[])).expect_err(s);
            assert!(matches!(err, TargetError::PasswordInString), "{err}");
            assert!(!err.to_string().contains("hunter2"));
        }
    }

    #[test]
    fn the_environment_completes_the_string_and_the_password_comes_from_pgpassword() {
        let vars = [
            ("PGHOST", "db.lab"),
            ("PGPORT", "6543"),
            ("PGUSER", "writer"),
            ("PGPASSWORD", "s3cret-pw"),
        ];
        let t = PgTarget::parse_with("dbname=edgebench sslmode=require", &env(&vars)).expect("ok");
        assert_eq!(
            t.to_string(),
            "postgres://writer@db.lab:6543/edgebench (sslmode=require)"
        );
        assert_eq!(t.config.get_password(), Some(&b"s3cret-pw"[..]));
        assert_eq!(t.tls, TlsMode::Require);
        assert!(!format!("{t:?} {t}").contains("s3cret"));
        let url = PgTarget::parse_with(
            "postgresql://reporter@127.0.0.1:5433/lab?sslmode=verify-full&sslrootcert=/tmp/ca.pem",
            &env(&[]),
        )
        .expect("url");
        assert_eq!(url.tls, TlsMode::VerifyFull);
        assert_eq!(url.root_cert.as_deref(), Some(Path::new("/tmp/ca.pem")));
        assert_eq!(url.config.get_password(), None);
        assert!(matches!(
            PgTarget::parse_with("host=x sslmode=sometimes", &env(&[])),
            Err(TargetError::SslMode(_))
        ));
    }

    #[test]
    fn the_password_file_matches_like_libpq_and_must_be_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("pgpass");
        std::fs::write(
            &file,
            "# comment\nother:5432:*:writer:wrong\ndb.lab:*:edgebench:writer:pa\\:ss\n*:*:*:*:fallback\n",
        )
        .expect("write");
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        let path = file.display().to_string();
        let vars = [("PGPASSFILE", path.as_str())];
        let t = PgTarget::parse_with("host=db.lab user=writer dbname=edgebench", &env(&vars))
            .expect("ok");
        assert_eq!(t.config.get_password(), Some(&b"pa:ss"[..]));
        let t = PgTarget::parse_with("host=elsewhere user=me dbname=x", &env(&vars)).expect("ok");
        assert_eq!(t.config.get_password(), Some(&b"fallback"[..]));
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let t = PgTarget::parse_with("host=db.lab user=writer dbname=edgebench", &env(&vars))
            .expect("ok");
        assert_eq!(t.config.get_password(), None, "a readable file is ignored");
    }

    #[test]
    fn connection_strings_are_told_from_file_paths() {
        assert!(is_connection_string("postgres://h/db"));
        assert!(is_connection_string("postgresql://h/db"));
        assert!(is_connection_string("host=/tmp/sock dbname=lab"));
        assert!(is_connection_string("dbname=lab"));
        assert!(!is_connection_string("results/edgebench.sqlite"));
        assert!(!is_connection_string("/tmp/a=b.sqlite"));
    }
}
