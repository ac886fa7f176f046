//! Driving one core node by hand in tests: a client's request, the fetch it starts, and its
//! source delivering the object.
#![allow(dead_code)] // each test file uses some of these

use reef_core::{
    FetchId, FetchResult, Input, NamespaceId, Node, ObjectId, ObjectRef, Output, Request, RequestId, RequestKind, Time,
};

/// Request `id` for `object` of `ns` (size unknown) by `kind`, at `at`: the outputs.
pub fn ask(
    node: &mut Node,
    at: Time,
    (id, object, ns): (u64, u64, NamespaceId),
    kind: RequestKind,
    metadata_only: bool,
) -> Vec<Output> {
    let object = ObjectRef { id: ObjectId(object), namespace: ns, size: None };
    let request = Request { id: RequestId(id), object, kind, client_site: None, length: None, metadata_only };
    node.handle(at, Input::Request(request));
    drain(node)
}

pub fn drain(node: &mut Node) -> Vec<Output> {
    std::iter::from_fn(|| node.poll()).collect()
}

/// The fetch among `out`, if one started.
pub fn fetch_of(out: &[Output]) -> Option<FetchId> {
    out.iter().find_map(|o| match o {
        Output::Fetch { fetch, .. } => Some(*fetch),
        _ => None,
    })
}

/// Fetch `fetch` delivers `size` bytes at `at`; then request `sent` (if any) is sent
/// (`ServeDone`): the outputs.
pub fn deliver(node: &mut Node, at: Time, fetch: FetchId, size: u64, sent: Option<u64>) -> Vec<Output> {
    node.handle(at, Input::FetchReceiving { fetch, size });
    node.handle(at, Input::FetchDone { fetch, result: FetchResult::Complete { size, validity: None } });
    if let Some(id) = sent {
        node.handle(at, Input::ServeDone { request: RequestId(id) });
    }
    drain(node)
}
