//! The director: sends each client to a close, healthy cache (the seed's "DNS resolves to a
//! close proxy"). Closeness is the client's own site first, then the sites the configuration
//! prefers for it, then proximity as this node measures it. Among equally close caches the
//! object's rendezvous weight picks one, so each object tends to one cache (better hit ratios)
//! and clients spread over them. Dead caches are skipped, and merely suspected ones are used
//! only when no cache is alive: a client sent to a cache that stopped answering probes would
//! wait out its own timeout, so the director moves on at the first suspicion.

use super::{Node, Role};
use crate::discovery::weight;
use crate::membership::Health;
use crate::protocol::{Failure, Request, Response};

impl Node {
    pub(super) fn direct(&mut self, req: Request) {
        let object = req.object.id;
        let preference = req.client_site.and_then(|s| self.config.site_preference.get(&s));
        let members = &self.membership;
        let best = members
            .members()
            .filter(|p| p.role == Role::Cache && members.usable(p.id))
            .min_by_key(|p| {
                let suspect = members.health(p.id) == Some(Health::Suspect);
                let site_rank = match req.client_site {
                    Some(s) if s == p.site => 0,
                    _ => {
                        1 + preference.and_then(|pref| pref.iter().position(|&s| s == p.site)).unwrap_or(usize::MAX - 1)
                    }
                };
                (suspect, site_rank, members.level(p.id), std::cmp::Reverse(weight(object, p.id)), p.id)
            })
            .map(|p| p.id);
        let response = match best {
            Some(to) => Response::Redirect { to },
            None => Response::Fail(Failure::AllSourcesDown),
        };
        self.respond(req.id, object, response);
    }
}
