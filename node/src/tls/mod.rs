//! Node identity and TLS. Every node of a federation holds a certificate issued by the
//! federation's CA that names it: a URI subject alternative name `urn:reef:node:<id>` binds
//! the node id to the key. Nodes talk to each other over mutual TLS, so the sender of a
//! message or fetch is whoever the certificate says, never a header. Users connect over the
//! same TLS listener without a client certificate.
//!
//! The certificate and key are re-read on `SIGHUP` (see [`NodeTls::reload`]); connections
//! open at the time keep their session.

pub mod connector;
pub mod federation;
pub mod seal;

use reef_core::NodeId;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

/// The URI SAN prefix that names a node.
pub const NODE_URI_PREFIX: &str = "urn:reef:node:";

/// `[tls]` in a node's configuration.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFiles {
    /// The federation CA's certificate (PEM): every node's certificate chains to it.
    pub ca: PathBuf,
    /// This node's certificate chain (PEM), leaf first.
    pub cert: PathBuf,
    /// This node's private key (PEM, PKCS#8).
    pub key: PathBuf,
}

impl TlsFiles {
    pub fn rebase(&mut self, base: &Path) {
        for p in [&mut self.ca, &mut self.cert, &mut self.key] {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
    }
}

/// An error loading TLS material, naming the file.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("`{file}`: {message}")]
    File { file: String, message: String },
    #[error("TLS setup: {0}")]
    Rustls(#[from] rustls::Error),
    #[error("client certificate verifier: {0}")]
    Verifier(#[from] rustls::server::VerifierBuilderError),
}

fn file_error(file: &Path, message: impl std::fmt::Display) -> TlsError {
    TlsError::File { file: file.display().to_string(), message: message.to_string() }
}

pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

pub fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| file_error(path, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file_error(path, e))?;
    if certs.is_empty() {
        return Err(file_error(path, "no certificate (expected PEM `BEGIN CERTIFICATE`)"));
    }
    Ok(certs)
}

pub fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| file_error(path, format!("no usable private key: {e}")))
}

fn roots(ca: &Path) -> Result<Arc<RootCertStore>, TlsError> {
    let mut store = RootCertStore::empty();
    for cert in read_certs(ca)? {
        store.add(cert).map_err(|e| file_error(ca, e))?;
    }
    Ok(Arc::new(store))
}

/// The node id a certificate names, if it names one.
pub fn node_id_of(cert: &CertificateDer<'_>) -> Option<NodeId> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref()).ok()?;
    let san = parsed.subject_alternative_name().ok()??;
    san.value.general_names.iter().find_map(|name| match name {
        x509_parser::extensions::GeneralName::URI(uri) => {
            uri.strip_prefix(NODE_URI_PREFIX).and_then(|id| id.parse().ok()).map(NodeId)
        }
        _ => None,
    })
}

/// This node's certificate and key, swapped whole on reload.
#[derive(Debug)]
struct Current {
    files: TlsFiles,
    key: RwLock<Arc<CertifiedKey>>,
}

impl Current {
    fn load(files: &TlsFiles, provider: &CryptoProvider, me: NodeId) -> Result<Arc<CertifiedKey>, TlsError> {
        let certs = read_certs(&files.cert)?;
        match node_id_of(&certs[0]) {
            Some(id) if id == me => {}
            Some(id) => {
                return Err(file_error(&files.cert, format!("names node {id}, but this node's id is {me}")));
            }
            None => {
                return Err(file_error(
                    &files.cert,
                    format!("names no node (expected a URI SAN `{NODE_URI_PREFIX}{me}`)"),
                ));
            }
        }
        let key = provider.key_provider.load_private_key(read_key(&files.key)?)?;
        let certified = CertifiedKey::new(certs, key);
        certified.keys_match().map_err(|e| file_error(&files.key, format!("does not match the certificate: {e}")))?;
        Ok(Arc::new(certified))
    }

    fn get(&self) -> Arc<CertifiedKey> {
        self.key.read().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl rustls::server::ResolvesServerCert for Current {
    fn resolve(&self, _hello: rustls::server::ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.get())
    }
}

impl rustls::client::ResolvesClientCert for Current {
    fn resolve(&self, _hints: &[&[u8]], _schemes: &[rustls::SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        Some(self.get())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// A node's TLS: the server side (users and nodes), the client side (to other nodes), and
/// the identity both present.
#[derive(Debug, Clone)]
pub struct NodeTls {
    current: Arc<Current>,
    provider: Arc<CryptoProvider>,
    me: NodeId,
    pub server: Arc<ServerConfig>,
    pub client: Arc<ClientConfig>,
}

impl NodeTls {
    pub fn load(files: &TlsFiles, me: NodeId) -> Result<NodeTls, TlsError> {
        let provider = provider();
        let current =
            Arc::new(Current { files: files.clone(), key: RwLock::new(Current::load(files, &provider, me)?) });
        let roots = roots(&files.ca)?;
        // Users have no certificate; a node's must chain to the federation CA.
        let verifier = WebPkiClientVerifier::builder_with_provider(roots.clone(), provider.clone())
            .allow_unauthenticated()
            .build()?;
        let mut server = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()?
            .with_client_cert_verifier(verifier)
            .with_cert_resolver(current.clone());
        server.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        // ALPN (h2, http/1.1) is set by the connector.
        let client = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_client_cert_resolver(current.clone());
        Ok(NodeTls { current, provider, me, server: Arc::new(server), client: Arc::new(client) })
    }

    /// Re-reads the certificate and key; on error the old ones stay in use.
    pub fn reload(&self) -> Result<(), TlsError> {
        let fresh = Current::load(&self.current.files, &self.provider, self.me)?;
        *self.current.key.write().unwrap_or_else(|e| e.into_inner()) = fresh;
        Ok(())
    }

    fn current_key(&self) -> Arc<CertifiedKey> {
        self.current.get()
    }

    /// Checks block-list seals against the federation CA.
    pub fn seal_check(&self) -> Result<seal::SealCheck, TlsError> {
        let ca = &self.current.files.ca;
        seal::SealCheck::new(&read_certs(ca)?).map_err(|e| file_error(ca, e))
    }
}

/// A client-side TLS configuration without a client certificate, trusting `ca` if given (a
/// user's `reef get --ca`, a test's issuer) and the system's CA certificates.
pub fn client_trusting(ca: Option<&Path>) -> Result<Arc<ClientConfig>, TlsError> {
    let mut store = match ca {
        Some(ca) => Arc::unwrap_or_clone(roots(ca)?),
        None => RootCertStore::empty(),
    };
    // A system without CA certificates still reaches `ca` and plain HTTP.
    let (added, _ignored) = store.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
    tracing::debug!(added, "system CA certificates");
    let config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(store)
        .with_no_client_auth();
    Ok(Arc::new(config))
}
