//! A director's DNS face (the seed's "DNS resolves to a close proxy"): an authoritative server
//! for one zone. `<namespace>.<zone>` and `<zone>` itself resolve to the closest healthy cache
//! for the client, chosen by the same core decision as the HTTP director's redirect
//! (`reef_core`'s director: own site, preferred sites, proximity, health), for a pseudo-object
//! per name so that one name tends to one cache per site. The client is the EDNS Client Subnet
//! address when the resolver sends one (RFC 7871; the answer's scope is that subnet), else the
//! resolver's address. Answers carry a short TTL (`node.dns_ttl`), so a dead cache leaves them
//! within the TTL plus the director's detection bound.

use crate::server::App;
use hickory_proto::op::{Edns, Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::opt::{ClientSubnet, EdnsCode, EdnsOption};
use hickory_proto::rr::rdata::{A, AAAA};
use hickory_proto::rr::{RData, Record, RecordType};
use reef_core::{ObjectName, ObjectRef, RequestKind};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

/// Serves queries on `socket` until the process ends. Malformed datagrams are dropped.
pub async fn serve(socket: tokio::net::UdpSocket, app: Arc<App>) {
    let mut buf = vec![0u8; 4096];
    loop {
        let Ok((n, from)) = socket.recv_from(&mut buf).await else { continue };
        if let Some(reply) = answer(&app, &buf[..n], from).await {
            let _ = socket.send_to(&reply, from).await;
        }
    }
}

/// What a name in the zone stands for: a namespace, or the zone itself (every namespace).
enum Target {
    Namespace(reef_core::NamespaceId, String),
    Zone,
}

async fn answer(app: &App, query: &[u8], from: SocketAddr) -> Option<Vec<u8>> {
    let request = Message::from_vec(query).ok()?;
    if request.message_type() != MessageType::Query {
        return None;
    }
    let dns = app.config.dns.as_ref()?;
    let mut reply = Message::new();
    reply
        .set_id(request.id())
        .set_message_type(MessageType::Response)
        .set_op_code(request.op_code())
        .set_recursion_desired(request.recursion_desired())
        .set_authoritative(true);
    reply.add_queries(request.queries().to_vec());
    let subnet = request.extensions().as_ref().and_then(|e| match e.option(EdnsCode::Subnet) {
        Some(EdnsOption::Subnet(s)) => Some(*s),
        _ => None,
    });
    if let Some(edns) = request.extensions() {
        let mut out = Edns::new();
        out.set_max_payload(1232).set_version(edns.version());
        if let Some(s) = subnet {
            // The answer holds for the whole subnet the resolver named.
            out.options_mut().insert(EdnsOption::Subnet(ClientSubnet::new(
                s.addr(),
                s.source_prefix(),
                s.source_prefix(),
            )));
        }
        reply.set_edns(out);
    }
    let (code, outcome) = resolve(app, dns, &request, subnet.map_or(from.ip(), |s| s.addr()), &mut reply).await;
    reply.set_response_code(code);
    app.metrics.add("reef_dns_queries_total", &[("answer", outcome)], 1.0);
    reply.to_vec().ok()
}

/// Fills the answer section; returns the response code and the outcome for the metrics.
async fn resolve(
    app: &App,
    dns: &crate::config::DnsConfig,
    request: &Message,
    client: IpAddr,
    reply: &mut Message,
) -> (ResponseCode, &'static str) {
    let [query] = request.queries() else { return (ResponseCode::FormErr, "malformed") };
    if request.op_code() != OpCode::Query {
        return (ResponseCode::NotImp, "not_implemented");
    }
    let name = query.name().to_ascii().trim_end_matches('.').to_ascii_lowercase();
    let target = if name == dns.zone {
        Target::Zone
    } else {
        let Some(label) = name.strip_suffix(&dns.zone).and_then(|l| l.strip_suffix('.')) else {
            return (ResponseCode::Refused, "refused"); // not our zone
        };
        match app.config.namespace(label) {
            Some(ns) => Target::Namespace(ns, label.to_string()),
            None => return (ResponseCode::NXDomain, "nxdomain"),
        }
    };
    let wants_v4 = matches!(query.query_type(), RecordType::A | RecordType::ANY);
    let wants_v6 = matches!(query.query_type(), RecordType::AAAA | RecordType::ANY);
    if !wants_v4 && !wants_v6 {
        return (ResponseCode::NoError, "no_data");
    }
    // The core decides, as for an HTTP request to the director.
    let (namespace, label) = match target {
        Target::Namespace(ns, label) => (ns, label),
        Target::Zone => (reef_core::NamespaceId(0), String::new()),
    };
    let name_object = ObjectName::new(label, String::new());
    let object = ObjectRef { id: name_object.id(), namespace, size: None };
    let site = app.config.site_of_address(client);
    let (id, mut answers) = app.driver.request(object, name_object, RequestKind::Client, site, Some(0), true);
    let decision = answers.recv().await;
    app.driver.serve_done(id);
    let Some(crate::driver::Answer::Redirect { to }) = decision else {
        return (ResponseCode::ServFail, "no_cache");
    };
    let Some(address) = app.config.peer(to).and_then(|p| p.dns_address) else {
        tracing::warn!(node = to.0, "the chosen cache has no `dns_address` (and its URL host is not an address)");
        return (ResponseCode::ServFail, "no_address");
    };
    let rdata = match address {
        IpAddr::V4(v4) if wants_v4 => RData::A(A(v4)),
        IpAddr::V6(v6) if wants_v6 => RData::AAAA(AAAA(v6)),
        _ => return (ResponseCode::NoError, "no_data"),
    };
    reply.add_answer(Record::from_rdata(query.name().clone(), dns.ttl, rdata));
    (ResponseCode::NoError, "answered")
}
