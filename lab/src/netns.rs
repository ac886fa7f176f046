//! Emulated sites in the kernel: one network namespace per site, one veth pair per link with
//! its rate shaped by `tbf` at both ends, and static routes along the paths the simulator's
//! topology takes (so multi-hop routes cross the same links as in the simulation). Each site
//! is reached at `10.255.0.<site + 1>` (on its loopback), so nodes bind there and the director
//! tells sites apart by source address. Latency is not added here (this kernel has no `netem`):
//! see [`crate::relay`].
//!
//! Everything is made under a short prefix and removed when the [`Network`] is dropped
//! (deleting a namespace deletes its veths and qdiscs); [`sweep`] removes what a crashed run
//! left behind. Needs root and iproute2.

use anyhow::{Context, bail};
use std::net::Ipv4Addr;
use std::process::Command;

/// A link between sites `a` and `b` (indexes), shaped to `bits_per_sec` each way.
#[derive(Debug, Clone, Copy)]
pub struct LinkSpec {
    pub a: usize,
    pub b: usize,
    pub bits_per_sec: u64,
}

/// The emulated sites; removed on drop.
#[derive(Debug)]
pub struct Network {
    /// Namespace names, by site index (only those created so far).
    namespaces: Vec<String>,
    /// Each link's two ends: (site, interface).
    ends: Vec<[(usize, String); 2]>,
    /// (site, neighbour) → (this end's interface, the neighbour's address on the link).
    hops: std::collections::HashMap<(usize, usize), (String, Ipv4Addr)>,
}

/// The address of site `i`.
pub fn site_addr(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(10, 255, (i / 250) as u8, (i % 250 + 1) as u8)
}

/// The two ends of link `k`: a /30 each.
fn link_addrs(k: usize) -> (Ipv4Addr, Ipv4Addr) {
    let (hi, lo) = ((k / 64) as u8, (k % 64 * 4) as u8);
    (Ipv4Addr::new(10, 254, hi, lo + 1), Ipv4Addr::new(10, 254, hi, lo + 2))
}

/// Runs a command; its standard error is the error if it fails.
pub(crate) fn run(args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new(args[0]).args(&args[1..]).output().with_context(|| format!("running {}", args[0]))?;
    if !out.status.success() {
        bail!("`{}` failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(())
}

impl Network {
    /// Creates the sites and links; `next_hop(from, to)` names the neighbour site a packet
    /// from `from` to `to` goes to first (the simulator's route), `None` if unreachable.
    pub fn create(
        prefix: &str,
        sites: usize,
        links: &[LinkSpec],
        next_hop: impl Fn(usize, usize) -> Option<usize>,
    ) -> anyhow::Result<Network> {
        if prefix.len() > 6 || !prefix.chars().all(|c| c.is_ascii_alphanumeric()) {
            bail!("prefix `{prefix}`: at most 6 letters or digits (interface names are short)");
        }
        let mut net = Network { namespaces: Vec::new(), ends: Vec::new(), hops: Default::default() };
        for i in 0..sites {
            let ns = format!("{prefix}-s{i}");
            run(&["ip", "netns", "add", &ns])?;
            net.namespaces.push(ns.clone());
            run(&["ip", "-n", &ns, "link", "set", "lo", "up"])?;
            run(&["ip", "-n", &ns, "addr", "add", &format!("{}/32", site_addr(i)), "dev", "lo"])?;
            run(&["ip", "netns", "exec", &ns, "sh", "-c", "echo 1 > /proc/sys/net/ipv4/ip_forward"])?;
        }
        for (k, l) in links.iter().enumerate() {
            let (ns_a, ns_b) = (&net.namespaces[l.a], &net.namespaces[l.b]);
            let (if_a, if_b) = (format!("{prefix}-l{k}a"), format!("{prefix}-l{k}b"));
            run(&["ip", "link", "add", &if_a, "netns", ns_a, "type", "veth", "peer", "name", &if_b, "netns", ns_b])?;
            let (addr_a, addr_b) = link_addrs(k);
            for (ns, ifname, addr) in [(ns_a, &if_a, addr_a), (ns_b, &if_b, addr_b)] {
                run(&["ip", "-n", ns, "addr", "add", &format!("{addr}/30"), "dev", ifname])?;
                run(&["ip", "-n", ns, "link", "set", ifname, "up"])?;
                shape(ns, ifname, l.bits_per_sec)?;
            }
            net.ends.push([(l.a, if_a.clone()), (l.b, if_b.clone())]);
            net.hops.insert((l.a, l.b), (if_a, addr_b));
            net.hops.insert((l.b, l.a), (if_b, addr_a));
        }
        net.set_routes(next_hop)?;
        Ok(net)
    }

    /// Sets every site's route to every other: towards `next_hop(from, to)`, or none.
    pub fn set_routes(&self, next_hop: impl Fn(usize, usize) -> Option<usize>) -> anyhow::Result<()> {
        let sites = self.namespaces.len();
        for from in 0..sites {
            let ns = &self.namespaces[from];
            for to in (0..sites).filter(|&to| to != from) {
                let dst = format!("{}/32", site_addr(to));
                let Some(hop) = next_hop(from, to) else {
                    let _ = run(&["ip", "-n", ns, "route", "del", &dst]); // may not exist
                    continue;
                };
                let Some((ifname, via)) = self.hops.get(&(from, hop)) else {
                    bail!("the route from site {from} to {to} goes to {hop}, but no link joins {from} and {hop}");
                };
                let src = site_addr(from).to_string();
                run(&["ip", "-n", ns, "route", "replace", &dst, "via", &via.to_string(), "dev", ifname, "src", &src])?;
            }
        }
        Ok(())
    }

    /// Cuts (both ends down: nothing crosses, the routes through it go) or heals link `k`; the
    /// caller sets the routes again after ([`Network::set_routes`]).
    pub fn set_link(&self, k: usize, up: bool) -> anyhow::Result<()> {
        for (site, ifname) in &self.ends[k] {
            run(&["ip", "-n", &self.namespaces[*site], "link", "set", ifname, if up { "up" } else { "down" }])?;
        }
        Ok(())
    }

    /// A command run inside site `i`'s namespace.
    pub fn command(&self, site: usize, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.namespaces[site], program]);
        c
    }

    pub fn namespace(&self, site: usize) -> &str {
        &self.namespaces[site]
    }

    /// Bytes link `k` has carried so far, both ways (Ethernet frames: headers included).
    pub fn link_bytes(&self, k: usize) -> anyhow::Result<u64> {
        let mut total = 0;
        for (site, ifname) in &self.ends[k] {
            let out =
                self.command(*site, "cat").arg(format!("/sys/class/net/{ifname}/statistics/tx_bytes")).output()?;
            let text = String::from_utf8_lossy(&out.stdout);
            total += text.trim().parse::<u64>().with_context(|| format!("tx_bytes of {ifname}: `{}`", text.trim()))?;
        }
        Ok(total)
    }
}

/// Shapes an interface's egress to `bits_per_sec` (`tbf`: a burst of at least one 4 ms tick's
/// worth, and 50 ms of queue).
fn shape(ns: &str, ifname: &str, bits_per_sec: u64) -> anyhow::Result<()> {
    if bits_per_sec == 0 {
        return Ok(());
    }
    let burst = (bits_per_sec / 8 / 250).max(16 * 1024);
    let (rate, burst) = (format!("{bits_per_sec}bit"), burst.to_string());
    run(&[
        "tc", "-n", ns, "qdisc", "add", "dev", ifname, "root", "tbf", "rate", &rate, "burst", &burst, "latency", "50ms",
    ])
}

impl Drop for Network {
    fn drop(&mut self) {
        for ns in self.namespaces.drain(..).rev() {
            if let Err(e) = run(&["ip", "netns", "del", &ns]) {
                eprintln!("reef-lab: cannot remove namespace {ns}: {e}");
            }
        }
    }
}

/// Removes every namespace whose name starts with `prefix-` (what a killed run left).
pub fn sweep(prefix: &str) -> anyhow::Result<usize> {
    let out = Command::new("ip").args(["netns", "list"]).output().context("running ip")?;
    let mut removed = 0;
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let name = line.split_whitespace().next().unwrap_or("");
        if name.starts_with(&format!("{prefix}-")) {
            run(&["ip", "netns", "del", name])?;
            removed += 1;
        }
    }
    Ok(removed)
}
