//! The client side of node-to-node TLS: connects over HTTPS (or plain HTTP where a URL says
//! so) and, for a URL that belongs to a known node, checks that the certificate presented
//! there names that very node. A node reachable at a peer's address but holding another
//! node's certificate (or a certificate of another CA) is not that peer.

use super::node_id_of;
use http::Uri;
use hyper_rustls::{HttpsConnector, MaybeHttpsStream};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioIo;
use reef_core::NodeId;
use rustls::ClientConfig;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::net::TcpStream;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Clone, Debug)]
pub struct NodeConnector {
    inner: HttpsConnector<HttpConnector>,
    /// `host:port` → the node that must answer there.
    expected: Arc<HashMap<String, NodeId>>,
}

impl NodeConnector {
    /// `nodes`: the base URLs of known nodes, whose certificates must name them.
    pub fn new(tls: Arc<ClientConfig>, nodes: impl IntoIterator<Item = (NodeId, String)>) -> NodeConnector {
        let mut http = HttpConnector::new();
        // A dead peer must fail fast so that the core can fail over.
        http.set_connect_timeout(Some(Duration::from_secs(2)));
        http.set_nodelay(true);
        http.enforce_http(false);
        let inner = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(Arc::unwrap_or_clone(tls))
            .https_or_http()
            .enable_http1()
            .enable_http2()
            .wrap_connector(http);
        let expected = nodes
            .into_iter()
            .filter_map(|(id, url)| url.parse::<Uri>().ok().and_then(|u| authority(&u)).map(|a| (a, id)))
            .collect();
        NodeConnector { inner, expected: Arc::new(expected) }
    }
}

fn authority(uri: &Uri) -> Option<String> {
    let port = uri.port_u16().unwrap_or(if uri.scheme_str() == Some("https") { 443 } else { 80 });
    Some(format!("{}:{port}", uri.host()?))
}

impl tower_service::Service<Uri> for NodeConnector {
    type Response = MaybeHttpsStream<TokioIo<TcpStream>>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let expected = authority(&uri).and_then(|a| self.expected.get(&a).copied());
        let connecting = self.inner.call(uri);
        Box::pin(async move {
            let stream = connecting.await?;
            if let (Some(want), MaybeHttpsStream::Https(tls)) = (expected, &stream) {
                let (_, session) = tls.inner().get_ref();
                let got = session.peer_certificates().and_then(|c| c.first()).and_then(node_id_of);
                if got != Some(want) {
                    let got = got.map_or("no node".to_string(), |id| id.to_string());
                    tracing::error!(expected = %want, certificate = %got, "a peer's address answered with another identity");
                    return Err(format!("expected {want}, the certificate names {got}").into());
                }
            }
            Ok(stream)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::{NodeTls, TlsFiles, federation};
    use tower_service::Service;

    /// A real TLS server holding node 5's certificate, reached at an address where the
    /// connector expects node 4: refused; where it expects node 5: accepted.
    #[tokio::test]
    async fn a_peer_address_must_answer_with_that_peers_certificate() {
        let dir = tempfile::tempdir().unwrap();
        federation::init(dir.path(), "test CA", 30).unwrap();
        for id in [4, 5] {
            federation::issue(dir.path(), id, &["127.0.0.1".into()], 30).unwrap();
        }
        let files = |id: u32| TlsFiles {
            ca: federation::ca_cert_path(dir.path()),
            cert: federation::node_cert_path(dir.path(), id),
            key: federation::node_key_path(dir.path(), id),
        };
        let server = NodeTls::load(&files(5), NodeId(5)).unwrap();
        let client = NodeTls::load(&files(4), NodeId(4)).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("https://127.0.0.1:{}", listener.local_addr().unwrap().port());
        let acceptor = tokio_rustls::TlsAcceptor::from(server.server.clone());
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    if let Ok(mut tls) = acceptor.accept(stream).await {
                        use tokio::io::AsyncReadExt;
                        let mut buf = [0u8; 16];
                        let _ = tls.read(&mut buf).await;
                    }
                });
            }
        });
        let uri: Uri = url.parse().unwrap();
        let mut expecting_4 = NodeConnector::new(client.client.clone(), [(NodeId(4), url.clone())]);
        let err = expecting_4.call(uri.clone()).await.expect_err("another node's certificate is refused");
        assert!(err.to_string().contains("expected n4, the certificate names n5"), "{err}");
        let mut expecting_5 = NodeConnector::new(client.client.clone(), [(NodeId(5), url)]);
        assert!(expecting_5.call(uri).await.is_ok());
    }
}
