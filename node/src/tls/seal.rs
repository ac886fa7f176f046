//! Block lists sealed by the origin: an origin signs each block list it publishes with its
//! node key, so a cache can prove that the bytes it serves are what the origin published,
//! whoever it fetched them (and the list) from. The seal travels with the list
//! (`Reef-Seal` header), is kept with the cached object and handed on to the next cache.
//!
//! A seal holds: the signature scheme, the signer's certificate (which must chain to the
//! federation CA and name one of the namespace's origins) and the signature over
//! `reef-blocks-v1`, the namespace, the path, the ETag and the encoded list.

use super::{NodeTls, node_id_of};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use reef_core::NodeId;
use rustls::SignatureScheme;
use rustls::pki_types::{CertificateDer, SignatureVerificationAlgorithm, TrustAnchor, UnixTime};

pub const REEF_SEAL: &str = "reef-seal";

/// The schemes an origin signs with, by preference; each has a verifier below.
const SCHEMES: [SignatureScheme; 3] =
    [SignatureScheme::ECDSA_NISTP256_SHA256, SignatureScheme::ED25519, SignatureScheme::RSA_PKCS1_SHA256];

fn verifier(scheme: SignatureScheme) -> Option<&'static dyn SignatureVerificationAlgorithm> {
    Some(match scheme {
        SignatureScheme::ECDSA_NISTP256_SHA256 => webpki::ring::ECDSA_P256_SHA256,
        SignatureScheme::ED25519 => webpki::ring::ED25519,
        SignatureScheme::RSA_PKCS1_SHA256 => webpki::ring::RSA_PKCS1_2048_8192_SHA256,
        _ => return None,
    })
}

/// What is signed: unambiguous (lengths before variable parts).
fn message(namespace: &str, path: &str, etag: &str, list: &[u8]) -> Vec<u8> {
    let mut m = b"reef-blocks-v1\0".to_vec();
    for part in [namespace.as_bytes(), path.as_bytes(), etag.as_bytes(), list] {
        m.extend_from_slice(&(part.len() as u64).to_be_bytes());
        m.extend_from_slice(part);
    }
    m
}

impl NodeTls {
    /// Seals a block list as this node (an origin); the `Reef-Seal` header value.
    pub fn seal(&self, namespace: &str, path: &str, etag: &str, list: &[u8]) -> Option<String> {
        let key = self.current_key();
        let signer = key.key.choose_scheme(&SCHEMES)?;
        let signature = signer.sign(&message(namespace, path, etag, list)).ok()?;
        Some(format!(
            "v1 {:04x} {} {}",
            u16::from(signer.scheme()),
            B64.encode(key.cert[0].as_ref()),
            B64.encode(signature)
        ))
    }
}

/// Checks seals against the federation CA.
#[derive(Debug)]
pub struct SealCheck {
    anchors: Vec<TrustAnchor<'static>>,
}

impl SealCheck {
    pub fn new(ca: &[CertificateDer<'static>]) -> Result<SealCheck, String> {
        let anchors = ca
            .iter()
            .map(|c| webpki::anchor_from_trusted_cert(c).map(|a| a.to_owned()).map_err(|e| e.to_string()))
            .collect::<Result<_, _>>()?;
        Ok(SealCheck { anchors })
    }

    /// The origin that sealed this list, if the seal holds and the signer is one of `origins`.
    pub fn verify(
        &self,
        seal: &str,
        namespace: &str,
        path: &str,
        etag: &str,
        list: &[u8],
        origins: &[NodeId],
    ) -> Result<NodeId, String> {
        let mut parts = seal.split(' ');
        let (Some("v1"), Some(scheme), Some(cert), Some(sig), None) =
            (parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err("malformed seal".into());
        };
        let scheme = u16::from_str_radix(scheme, 16).map_err(|_| "malformed seal scheme")?;
        let alg = verifier(SignatureScheme::from(scheme)).ok_or("unsupported seal scheme")?;
        let cert = CertificateDer::from(B64.decode(cert).map_err(|_| "malformed seal certificate")?);
        let sig = B64.decode(sig).map_err(|_| "malformed seal signature")?;
        let signer = node_id_of(&cert).ok_or("the seal's certificate names no node")?;
        if !origins.contains(&signer) {
            return Err(format!("sealed by node {signer}, not an origin of `{namespace}`"));
        }
        let parsed = webpki::EndEntityCert::try_from(&cert).map_err(|e| format!("seal certificate: {e}"))?;
        parsed
            .verify_for_usage(
                webpki::ALL_VERIFICATION_ALGS,
                &self.anchors,
                &[],
                UnixTime::now(),
                webpki::KeyUsage::server_auth(),
                None,
                None,
            )
            .map_err(|e| format!("seal certificate not issued by the federation CA: {e}"))?;
        parsed
            .verify_signature(alg, &message(namespace, path, etag, list), &sig)
            .map_err(|_| "the seal's signature does not match the list".to_string())?;
        Ok(signer)
    }
}
