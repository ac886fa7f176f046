//! A token issuer for tests: a real HTTP server on 127.0.0.1 publishing its keys at
//! `/.well-known/openid-configuration` → `/jwks`, and real signed JWTs (ES256 keys from rcgen,
//! RS256 keys from openssl).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

struct Key {
    kid: String,
    alg: Algorithm,
    encoding: EncodingKey,
    jwk: Value,
}

pub struct Issuer {
    pub url: String,
    keys: Arc<Mutex<Vec<Key>>>,
    /// While false, every connection is dropped unanswered (the issuer is down).
    pub up: Arc<AtomicBool>,
    /// How many times the key set was fetched.
    pub fetches: Arc<AtomicUsize>,
}

pub fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

impl Issuer {
    /// An issuer with an ES256 key `es-1` and an RS256 key `rs-1`.
    pub fn start() -> Issuer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
        let issuer = Issuer {
            url: url.clone(),
            keys: Arc::default(),
            up: Arc::new(AtomicBool::new(true)),
            fetches: Arc::default(),
        };
        issuer.add_key("es-1", Algorithm::ES256);
        issuer.add_key("rs-1", Algorithm::RS256);
        let (keys, up, fetches) = (issuer.keys.clone(), issuer.up.clone(), issuer.fetches.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                if !up.load(Ordering::SeqCst) {
                    continue; // dropped: connection reset
                }
                let mut line = String::new();
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                if reader.read_line(&mut line).is_err() {
                    continue;
                }
                loop {
                    let mut h = String::new();
                    if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                        break;
                    }
                }
                let body = if line.starts_with("GET /.well-known/openid-configuration ") {
                    json!({"issuer": url, "jwks_uri": format!("{url}/jwks")}).to_string()
                } else if line.starts_with("GET /jwks ") {
                    fetches.fetch_add(1, Ordering::SeqCst);
                    let keys = keys.lock().unwrap();
                    json!({"keys": keys.iter().map(|k| k.jwk.clone()).collect::<Vec<_>>()}).to_string()
                } else {
                    let _ =
                        stream.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
                    continue;
                };
                let _ = write!(
                    stream,
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        issuer
    }

    /// Publishes a new key (a rotation adds one).
    pub fn add_key(&self, kid: &str, alg: Algorithm) {
        let (encoding, mut jwk) = match alg {
            Algorithm::ES256 => {
                let pair = rcgen::KeyPair::generate().unwrap();
                let raw = pair.public_key_raw(); // 0x04 | x | y
                let jwk =
                    json!({"kty": "EC", "crv": "P-256", "x": B64.encode(&raw[1..33]), "y": B64.encode(&raw[33..65])});
                (EncodingKey::from_ec_pem(pair.serialize_pem().as_bytes()).unwrap(), jwk)
            }
            Algorithm::RS256 => {
                let dir = tempfile::tempdir().unwrap();
                let pem = dir.path().join("k.pem");
                let ok = Command::new("openssl")
                    .args(["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out"])
                    .arg(&pem)
                    .output()
                    .expect("openssl is installed (.ci/packages)");
                assert!(ok.status.success());
                let out =
                    Command::new("openssl").args(["rsa", "-noout", "-modulus", "-in"]).arg(&pem).output().unwrap();
                let hex = String::from_utf8(out.stdout).unwrap();
                let hex = hex.trim().strip_prefix("Modulus=").unwrap();
                let n: Vec<u8> =
                    (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap()).collect();
                let jwk = json!({"kty": "RSA", "n": B64.encode(n), "e": "AQAB"});
                (EncodingKey::from_rsa_pem(&std::fs::read(&pem).unwrap()).unwrap(), jwk)
            }
            other => panic!("no {other:?} keys here"),
        };
        jwk["kid"] = json!(kid);
        jwk["alg"] = json!(format!("{alg:?}"));
        jwk["use"] = json!("sig");
        self.keys.lock().unwrap().push(Key { kid: kid.into(), alg, encoding, jwk });
    }

    /// Claims of a good token: this issuer, audience `reef`, valid for 10 minutes, `scope`.
    pub fn claims(&self, scope: &str) -> Value {
        json!({"iss": self.url, "aud": "reef", "sub": "tester", "iat": now(), "nbf": now() - 5, "exp": now() + 600,
               "scope": scope, "wlcg.ver": "1.0", "jti": format!("{}", rand_id())})
    }

    /// A token signed with key `kid`.
    pub fn sign(&self, kid: &str, claims: &Value) -> String {
        let keys = self.keys.lock().unwrap();
        let key = keys.iter().find(|k| k.kid == kid).expect("a published key");
        let mut header = Header::new(key.alg);
        header.kid = Some(kid.into());
        jsonwebtoken::encode(&header, claims, &key.encoding).unwrap()
    }

    /// A token signed with a key this issuer never published, under `kid`.
    pub fn sign_unpublished(&self, kid: &str, claims: &Value) -> String {
        let pair = rcgen::KeyPair::generate().unwrap();
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(kid.into());
        jsonwebtoken::encode(&header, claims, &EncodingKey::from_ec_pem(pair.serialize_pem().as_bytes()).unwrap())
            .unwrap()
    }

    /// An HS256 token "signed" with a guessable secret, naming a published key.
    pub fn sign_hs256(&self, claims: &Value) -> String {
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some("es-1".into());
        jsonwebtoken::encode(&header, claims, &EncodingKey::from_secret(b"secret")).unwrap()
    }

    /// An unsigned token (`alg: none`).
    pub fn unsigned(&self, claims: &Value) -> String {
        let header = B64.encode(br#"{"alg":"none","typ":"JWT","kid":"es-1"}"#);
        format!("{header}.{}.", B64.encode(claims.to_string()))
    }

    /// The `[[issuers]]` block trusting this issuer.
    pub fn config(&self, extra: &str) -> String {
        format!("\n[[issuers]]\nissuer = \"{}\"\naudiences = [\"reef\"]\n{extra}\n", self.url)
    }
}

fn rand_id() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(now());
    h.finish()
}
