//! The parts of a split fill (`reef_core::node::parts`): each fetches its byte range from its
//! holder with a `Range` request, checks every block against the origin's list before writing
//! it into the fill's shared file (`Assembly`), and reports how far it got. Whichever part
//! verifies the last block finishes the object.

use super::{FillReport, PROGRESS_EVERY, REEF_ACCESS, REEF_FAILURE, Transport, fetch_error};
use crate::assembly::Assembly;
use crate::fill::{Fill, State};
use crate::http::object_path;
use crate::store::ObjectMeta;
use bytes::Bytes;
use http::{Request, StatusCode, header};
use http_body_util::{BodyExt, Full};
use reef_core::{FetchError, FetchKind, FetchResult, Part};
use std::os::unix::fs::FileExt;
use std::sync::Arc;

impl Transport {
    /// Runs `part` of a split fill: how it ended, and the first byte of its range not verified.
    pub async fn fetch_part(
        &self,
        fill: &Fill,
        assembly: &Assembly,
        part: Part,
        private: bool,
        report: impl Fn(FillReport),
    ) -> (Result<(), FetchError>, u64) {
        let mut reached = part.start;
        let result = self.fetch_part_inner(fill, assembly, part, private, &mut reached, &report).await;
        if let Err(e) = result {
            tracing::warn!(object = %fill.name, from = %part.from, part = part.id, error = e.name(), reached, "part broke");
        }
        (result, reached)
    }

    async fn fetch_part_inner(
        &self,
        fill: &Fill,
        assembly: &Assembly,
        part: Part,
        private: bool,
        reached: &mut u64,
        report: &impl Fn(FillReport),
    ) -> Result<(), FetchError> {
        if part.start % assembly.of.list.block_size != 0 {
            tracing::error!(object = %fill.name, "the origin's block size is not the cache's `policy.block_size`: a range cannot be checked on its own");
            return Err(FetchError::Broken);
        }
        let url = self.url_of(part.from).ok_or(FetchError::Unreachable)?;
        let path = object_path::encode(&fill.name.namespace, &fill.name.path);
        let req = self
            .asking(Request::get(format!("{url}{path}")), part.kind.request_kind(self.me, part.patience))
            .header(header::RANGE, format!("bytes={}-{}", part.start, part.end.saturating_sub(1)))
            .body(Full::new(Bytes::new()))
            .map_err(|_| FetchError::Refused)?;
        let resp = self.client.request(req).await.map_err(|_| FetchError::Unreachable)?;
        let (status, headers) = (resp.status(), resp.headers());
        let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        if status != StatusCode::PARTIAL_CONTENT {
            return Err(fetch_error(status, text(REEF_FAILURE)));
        }
        if !private && text(REEF_ACCESS) == Some("private") {
            tracing::error!(object = %fill.name, from = %part.from, "the namespace is private upstream but public here: not serving it");
            return Err(FetchError::Unauthorized);
        }
        // The very range of the very version the lead began, or nothing.
        let size = assembly.of.list.size;
        let range = format!("bytes {}-{}/{size}", part.start, part.end.saturating_sub(1));
        if text("etag") != Some(assembly.of.head.etag.as_str()) || text("content-range") != Some(range.as_str()) {
            tracing::warn!(object = %fill.name, from = %part.from, "part's source has another version or range");
            return Err(FetchError::Broken);
        }
        let list = &assembly.of.list;
        let mut body = resp.into_body();
        let mut block = Vec::with_capacity(list.block_size as usize);
        let mut index = list.index_of(part.start);
        let mut at = part.start;
        let mut reported = std::time::Instant::now();
        while let Some(frame) = body.frame().await {
            let Ok(data) = frame.map_err(|_| FetchError::Broken)?.into_data() else { continue };
            if at + data.len() as u64 > part.end {
                return Err(FetchError::Broken);
            }
            at += data.len() as u64;
            let mut rest = &data[..];
            while !rest.is_empty() {
                let (start, end) = list.span(index);
                let take = ((end - start) as usize - block.len()).min(rest.len());
                block.extend_from_slice(&rest[..take]);
                rest = &rest[take..];
                if block.len() as u64 == end - start {
                    // Checked before it is written: the shared file only ever holds the
                    // origin's bytes where another part or a reader may look.
                    list.check(index, &block).map_err(|bad| {
                        tracing::error!(object = %fill.name, from = %part.from, block = bad.index, "block does not match the origin's block list");
                        FetchError::Broken
                    })?;
                    if let Err(e) = assembly.of.file.write_all_at(&block, start) {
                        if e.kind() == std::io::ErrorKind::StorageFull {
                            report(FillReport::NoSpace);
                            return Err(FetchError::NoSpace);
                        }
                        return Err(self.io_failure(fill, &e));
                    }
                    *reached = end;
                    fill.set_verified(assembly.of.attempt, assembly.mark(start, end));
                    block.clear();
                    index += 1;
                }
            }
            if part.kind == FetchKind::Origin {
                self.pace_fill(&fill.name.namespace, data.len() as u64).await;
            }
            if reported.elapsed() >= PROGRESS_EVERY {
                reported = std::time::Instant::now();
                report(FillReport::PartProgress { part: part.id, reached: *reached });
            }
        }
        if *reached < part.end { Err(FetchError::Broken) } else { Ok(()) }
    }

    /// Finishes a split fill once every block is verified: its checksums (from reading the
    /// file), the upstream `Digest` checked, and the fill complete. `None` if another part
    /// finishes it, or it is not whole yet.
    pub async fn finish_split(&self, fill: &Fill, assembly: Arc<Assembly>) -> Option<FetchResult> {
        // (A fill the core gave up is not finished: its file goes with it.)
        let receiving = |f: &Fill| matches!(f.snapshot().state, State::Receiving { .. });
        if !receiving(fill) || !assembly.claim_finish() {
            return None;
        }
        let reading = assembly.clone();
        let digests = match tokio::task::spawn_blocking(move || reading.digests()).await {
            Ok(Ok(d)) => d,
            Ok(Err(e)) => return Some(self.io_failure(fill, &e).into()),
            Err(_) => return Some(FetchError::Broken.into()),
        };
        if let Some(claimed) = &assembly.of.upstream_digest
            && !digests.matches_header(claimed)
        {
            tracing::error!(object = %fill.name, %claimed, "checksum mismatch: fill discarded");
            return Some(FetchError::Broken.into());
        }
        let head = assembly.of.head.clone();
        let meta = ObjectMeta {
            namespace: fill.name.namespace.clone(),
            path: fill.name.path.clone(),
            size: head.size,
            etag: head.etag.clone(),
            last_modified: head.last_modified,
            digests,
            blocks: Some((*assembly.of.list).clone()),
            seal: assembly.of.seal.clone(),
            caching: None,
        };
        if !receiving(fill) {
            return None;
        }
        assembly.keep();
        let (file, temp) = (assembly.of.file.clone(), assembly.of.temp.clone());
        fill.set(assembly.of.attempt, State::Complete { head, file, meta: Arc::new(meta), temp });
        Some(FetchResult::Complete { size: assembly.of.list.size, validity: None })
    }
}
