//! Makes the certificates of a TLS or mTLS demo: a CA, a server certificate for loopback signed
//! by it, and one client certificate per `--client NAME`.
//!
//! Run: `cargo run -p nexus-examples --bin nexus-certs -- --out ./certs --client payments`
//!
//! Files in `--out` (keys are written readable by their owner only):
//! - `ca.pem`, `ca-key.pem`: the CA (give `ca.pem` to servers as their client CA and to clients
//!   as their root);
//! - `server.pem`, `server-key.pem`: for 127.0.0.1, ::1 and localhost (and each `--host`);
//! - `NAME.pem`, `NAME-key.pem` per `--client NAME`: CN=NAME, with NAME as a DNS name in the
//!   subject alternative names (or as a URI when NAME is one, such as `spiffe://corp/payments`).
//!
//! For demos and tests: production certificates come from your own PKI.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use clap::Parser;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose, SanType,
};

/// Makes a CA, a server certificate for loopback and client certificates, as PEM files.
#[derive(Debug, Parser)]
#[command(name = "nexus-certs", version)]
struct Args {
    /// The directory to write into (created if missing).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Make a client certificate NAME.pem / NAME-key.pem with CN=NAME (repeatable).
    #[arg(long, value_name = "NAME")]
    client: Vec<String>,
    /// Another name or IP address the server certificate is valid for (repeatable).
    #[arg(long, value_name = "HOST")]
    host: Vec<String>,
    /// How long the certificates are valid, in days.
    #[arg(long, value_name = "N", default_value_t = 365, value_parser = clap::value_parser!(u32).range(1..=3650))]
    days: u32,
    /// Overwrite files that exist.
    #[arg(long)]
    force: bool,
}

fn main() -> ExitCode {
    match run(&Args::parse()) {
        Ok(written) => {
            for path in written {
                println!("{}", path.display());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("nexus-certs: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> Result<Vec<PathBuf>, String> {
    for name in &args.client {
        if name.is_empty() || (name.contains(['/', '\\']) && !name.contains("://")) {
            return Err(format!(
                "--client `{name}`: a name must be non-empty and without path separators"
            ));
        }
        if matches!(name.as_str(), "ca" | "server") {
            return Err(format!(
                "--client `{name}`: the name is taken by the {name} files"
            ));
        }
    }
    std::fs::create_dir_all(&args.out)
        .map_err(|e| format!("cannot create {}: {e}", args.out.display()))?;
    let mut files = vec!["ca".to_owned(), "server".to_owned()];
    files.extend(args.client.iter().map(|name| file_stem(name)));
    if !args.force {
        for stem in &files {
            for path in pair_paths(&args.out, stem) {
                if path.exists() {
                    return Err(format!(
                        "{} exists; pass --force to overwrite",
                        path.display()
                    ));
                }
            }
        }
    }
    let validity = Validity::days(args.days);
    let ca_key = KeyPair::generate().map_err(|e| format!("cannot make a key: {e}"))?;
    let mut ca = params(Vec::new(), "nexus-rs demo CA", &validity);
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca =
        CertifiedIssuer::self_signed(ca, ca_key).map_err(|e| format!("cannot make the CA: {e}"))?;
    let mut written = write_pair(&args.out, "ca", &ca.pem(), &ca.key().serialize_pem())?;

    let mut hosts = vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ];
    hosts.extend(args.host.iter().cloned());
    let mut sans = Vec::new();
    for host in &hosts {
        sans.push(match host.parse::<IpAddr>() {
            Ok(ip) => SanType::IpAddress(ip),
            Err(_) => SanType::DnsName(
                host.clone()
                    .try_into()
                    .map_err(|e| format!("--host `{host}`: {e}"))?,
            ),
        });
    }
    let mut server = params(sans, "localhost", &validity);
    server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    written.extend(sign(&args.out, "server", server, &ca)?);

    for name in &args.client {
        let san = if name.contains("://") {
            SanType::URI(
                name.clone()
                    .try_into()
                    .map_err(|e| format!("--client `{name}`: {e}"))?,
            )
        } else {
            SanType::DnsName(
                name.clone()
                    .try_into()
                    .map_err(|e| format!("--client `{name}`: {e}"))?,
            )
        };
        let mut client = params(vec![san], name, &validity);
        client.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        written.extend(sign(&args.out, &file_stem(name), client, &ca)?);
    }
    Ok(written)
}

/// From a day ago (clocks differ) to `days` from now.
struct Validity {
    not_before: SystemTime,
    not_after: SystemTime,
}

impl Validity {
    fn days(days: u32) -> Self {
        let now = SystemTime::now();
        Self {
            not_before: now - Duration::from_secs(24 * 3600),
            not_after: now + Duration::from_secs(u64::from(days) * 24 * 3600),
        }
    }
}

fn params(sans: Vec<SanType>, common_name: &str, validity: &Validity) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.subject_alt_names = sans;
    params.distinguished_name = DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    params.not_before = validity.not_before.into();
    params.not_after = validity.not_after.into();
    params
}

fn sign(
    dir: &Path,
    stem: &str,
    params: CertificateParams,
    ca: &CertifiedIssuer<'_, KeyPair>,
) -> Result<Vec<PathBuf>, String> {
    let key = KeyPair::generate().map_err(|e| format!("cannot make a key: {e}"))?;
    let cert = params
        .signed_by(&key, ca)
        .map_err(|e| format!("cannot sign {stem}: {e}"))?;
    write_pair(dir, stem, &cert.pem(), &key.serialize_pem())
}

/// The file name of a client: its name, with a URI's scheme and separators made plain.
fn file_stem(name: &str) -> String {
    let plain = name.rsplit("://").next().unwrap_or(name);
    plain
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn pair_paths(dir: &Path, stem: &str) -> [PathBuf; 2] {
    [
        dir.join(format!("{stem}.pem")),
        dir.join(format!("{stem}-key.pem")),
    ]
}

fn write_pair(dir: &Path, stem: &str, cert: &str, key: &str) -> Result<Vec<PathBuf>, String> {
    let [cert_path, key_path] = pair_paths(dir, stem);
    std::fs::write(&cert_path, cert)
        .map_err(|e| format!("cannot write {}: {e}", cert_path.display()))?;
    write_private(&key_path, key)?;
    Ok(vec![cert_path, key_path])
}

/// Writes a key readable by its owner only (on Unix).
fn write_private(path: &Path, key: &str) -> Result<(), String> {
    let cannot = |e: std::io::Error| format!("cannot write {}: {e}", path.display());
    let _ = std::fs::remove_file(path);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).map_err(cannot)?;
    std::io::Write::write_all(&mut file, key.as_bytes()).map_err(cannot)
}
