//! A federation's certificates in a few commands: `reef-node ca init` makes the CA,
//! `reef-node ca issue` a node's certificate naming its id (`urn:reef:node:<id>`) and the
//! host names and addresses clients reach it by. Keys are ECDSA P-256, written mode 0600.

use super::NODE_URI_PREFIX;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose, SanType,
};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

pub fn ca_cert_path(dir: &Path) -> PathBuf {
    dir.join("ca.pem")
}
pub fn ca_key_path(dir: &Path) -> PathBuf {
    dir.join("ca.key")
}
pub fn node_cert_path(dir: &Path, id: u32) -> PathBuf {
    dir.join(format!("node-{id}.pem"))
}
pub fn node_key_path(dir: &Path, id: u32) -> PathBuf {
    dir.join(format!("node-{id}.key"))
}

/// Validity from today for `days`.
fn validity(params: &mut CertificateParams, days: u32) {
    let now = time_now();
    params.not_before = now - std::time::Duration::from_secs(3600);
    params.not_after = now + std::time::Duration::from_secs(u64::from(days) * 86_400);
}

fn time_now() -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc()
}

/// Writes `text` to a new file (never over an existing one), private if `secret`.
fn write_new(path: &Path, text: &str, secret: bool) -> anyhow::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true).mode(if secret { 0o600 } else { 0o644 });
    let mut file = options.open(path).map_err(|e| anyhow::anyhow!("`{}`: {e}", path.display()))?;
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    Ok(())
}

/// Creates `dir/ca.pem` and `dir/ca.key`.
pub fn init(dir: &Path, name: &str, days: u32) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    let mut params = CertificateParams::default();
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    params.distinguished_name.push(DnType::CommonName, name);
    validity(&mut params, days);
    let key = KeyPair::generate()?;
    let cert = params.self_signed(&key)?;
    write_new(&ca_key_path(dir), &key.serialize_pem(), true)?;
    write_new(&ca_cert_path(dir), &cert.pem(), false)?;
    Ok(())
}

/// Issues node `id`'s certificate (`dir/node-<id>.pem`, `.key`) from the CA in `dir`, valid
/// for `hosts` (DNS names or IP addresses).
pub fn issue(dir: &Path, id: u32, hosts: &[String], days: u32) -> anyhow::Result<(PathBuf, PathBuf)> {
    let read = |p: PathBuf| std::fs::read_to_string(&p).map_err(|e| anyhow::anyhow!("`{}`: {e}", p.display()));
    let ca_key = KeyPair::from_pem(&read(ca_key_path(dir))?)?;
    let ca_params = CertificateParams::from_ca_cert_pem(&read(ca_cert_path(dir))?)?;
    // Re-signed with the same key and name: the issuer a node's certificate names.
    let ca = ca_params.self_signed(&ca_key)?;

    let mut params = CertificateParams::new(hosts.to_vec())?;
    let uri = format!("{NODE_URI_PREFIX}{id}");
    params.subject_alt_names.push(SanType::URI(uri.as_str().try_into()?));
    params.distinguished_name.push(DnType::CommonName, format!("reef node {id}"));
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
    params.use_authority_key_identifier_extension = true;
    validity(&mut params, days);
    let key = KeyPair::generate()?;
    let cert = params.signed_by(&key, &ca, &ca_key)?;
    let (cert_path, key_path) = (node_cert_path(dir, id), node_key_path(dir, id));
    write_new(&key_path, &key.serialize_pem(), true)?;
    write_new(&cert_path, &cert.pem(), false)?;
    Ok((cert_path, key_path))
}
