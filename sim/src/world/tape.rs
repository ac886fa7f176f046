//! Origins in front of tape libraries (`crate::tape`): a fetch of a file that is not online
//! is answered "staging" (`FetchResult::Staging`, with the library's `poll` delay) and its
//! recall queued; the requester's core decides when to ask again, as with reef-node's
//! nearline origins.

use super::*;
use crate::tape::Read;

impl World {
    /// Whether origin `n`'s answer to `request` (a fetch) must wait for a recall: if so the
    /// requester is told to ask again later, and the request ends here.
    pub(super) fn staging(&mut self, n: u32, request: RequestId) -> bool {
        let Some(pr) = self.peer_reqs.get(&request.0) else { return false };
        let object = pr.request.object;
        let dataset = self.dataset_of.as_ref().and_then(|d| d.get(&object.id.0).copied());
        let now = self.now();
        let key = (n, pr.requester, pr.fetch.0);
        let Some(lib) = self.tapes[n as usize].as_mut() else { return false };
        let tape = lib.tape_of(object.id, dataset);
        let again = self.staged.remove(&key);
        if lib.read(now, object.id, object.size.unwrap_or(0), tape, again) == Read::Online {
            return false;
        }
        self.staged.insert(key);
        let retry_after = lib.params().poll;
        self.schedule_tape(n);
        self.deliver(now, n, Input::ServeDone { request });
        self.answer_staging(n, request, retry_after);
        true
    }

    /// Node `n` told a fetch's request to ask again after `retry_after` (an origin staging
    /// the file, or a cache whose own fill of it waits for one).
    pub(super) fn answer_staging(&mut self, n: u32, request: RequestId, retry_after: Duration) {
        let Some(pr) = self.peer_reqs.remove(&request.0) else { return };
        if self.fetches.remove(&(pr.requester, pr.fetch.0)).is_some() {
            let lat = self.latency(n, pr.requester);
            let done = Input::FetchDone { fetch: pr.fetch, result: FetchResult::Staging { retry_after } };
            self.deliver(self.now() + lat, pr.requester, done);
        }
    }

    /// Makes sure origin `n`'s library is woken when its next recall ends.
    fn schedule_tape(&mut self, n: u32) {
        let lib = self.tapes[n as usize].as_mut().expect("a library");
        if let Some(at) = lib.next_done()
            && lib.scheduled != Some(at)
        {
            lib.scheduled = Some(at);
            self.engine.schedule(at, Ev::Tape(n));
        }
    }

    pub(super) fn tape_wake(&mut self, n: u32) {
        let now = self.now();
        let lib = self.tapes[n as usize].as_mut().expect("a library");
        lib.finish_due(now);
        if lib.scheduled == Some(now) {
            lib.scheduled = None;
        }
        self.schedule_tape(n);
    }

    /// Notes the dataset of a catalog object a client asks for (for its cartridge).
    pub(super) fn note_dataset(&mut self, object: ObjectRef, index: Option<u64>) {
        if let (Some(index), Some(datasets)) = (index, self.dataset_of.as_mut()) {
            datasets.insert(object.id.0, index / self.workload.catalog.dataset_files);
        }
    }
}
