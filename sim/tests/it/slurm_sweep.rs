//! The Slurm sweep in `scenarios/batch/` runs as written on a real one-node Slurm (slurm-wlm and
//! munge, started here without systemd: munged, slurmctld and slurmd in the foreground, on free
//! ports, with their state in a temporary folder), and its merged result is byte for byte the
//! unsharded `compare`. Needs root and the packages: skipped with a message elsewhere, never in
//! CI (where both are there).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The daemons of a one-node cluster; killed when dropped.
struct Slurm {
    daemons: Vec<Child>,
    conf: PathBuf,
}

impl Drop for Slurm {
    fn drop(&mut self) {
        for d in &mut self.daemons {
            let _ = d.kill();
            let _ = d.wait();
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn output(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn daemon(cmd: &mut Command, log: &Path) -> Child {
    let log = std::fs::File::create(log).unwrap();
    cmd.stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e}"))
}

impl Slurm {
    fn start(dir: &Path) -> Slurm {
        let d = |name: &str| dir.join(name);
        std::fs::create_dir_all(d("state")).unwrap();
        std::fs::create_dir_all(d("spool")).unwrap();
        // A key and a socket of its own: whatever munged the machine runs is left alone.
        output(Command::new("mungekey").arg("--create").arg("--keyfile").arg(d("munge.key")));
        let socket = d("munge.socket");
        let mut daemons = vec![daemon(
            Command::new("munged")
                .arg("--foreground")
                .arg("--force")
                .arg(format!("--socket={}", socket.display()))
                .arg(format!("--key-file={}", d("munge.key").display()))
                .arg(format!("--pid-file={}", d("munged.pid").display()))
                .arg(format!("--seed-file={}", d("munged.seed").display()))
                .arg(format!("--log-file={}", d("munged.log").display())),
            &d("munged.out"),
        )];
        wait_for("munged's socket", || socket.exists());
        // This machine's own description (CPUs, memory) as the one node.
        let node = output(Command::new("slurmd").arg("-C"));
        let node = node.lines().next().expect("slurmd -C prints the node line");
        let conf = d("slurm.conf");
        let text = format!(
            "ClusterName=reef-test\nSlurmctldHost={host}\nSlurmctldPort={ctld}\nSlurmdPort={slurmd}\n\
             SlurmUser=root\nSlurmdUser=root\nAuthType=auth/munge\nCredType=cred/munge\n\
             AuthInfo=socket={socket}\n\
             StateSaveLocation={state}\nSlurmdSpoolDir={spool}\n\
             SlurmctldPidFile={dir}/slurmctld.pid\nSlurmdPidFile={dir}/slurmd.pid\n\
             SlurmctldLogFile={dir}/slurmctld.log\nSlurmdLogFile={dir}/slurmd.log\n\
             ProctrackType=proctrack/linuxproc\nTaskPlugin=task/none\nJobAcctGatherType=jobacct_gather/none\n\
             SelectType=select/cons_tres\nSelectTypeParameters=CR_Core_Memory\nSchedulerType=sched/backfill\n\
             MpiDefault=none\nReturnToService=2\nSlurmdTimeout=30\nInactiveLimit=0\nMinJobAge=300\n\
             {node} State=UNKNOWN\nPartitionName=test Nodes=ALL Default=YES MaxTime=INFINITE State=UP\n",
            host = hostname(),
            ctld = free_port(),
            slurmd = free_port(),
            socket = socket.display(),
            state = d("state").display(),
            spool = d("spool").display(),
            dir = dir.display(),
        );
        std::fs::write(&conf, text).unwrap();
        daemons.push(daemon(Command::new("slurmctld").args(["-D", "-i", "-f"]).arg(&conf), &d("slurmctld.out")));
        daemons.push(daemon(Command::new("slurmd").args(["-D", "-f"]).arg(&conf), &d("slurmd.out")));
        let slurm = Slurm { daemons, conf };
        wait_for("the node to be idle", || {
            let out = slurm.command("sinfo").args(["-h", "-o", "%t"]).output().unwrap();
            String::from_utf8_lossy(&out.stdout).trim() == "idle"
        });
        slurm
    }

    /// A Slurm client command that talks to this cluster.
    fn command(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        c.env("SLURM_CONF", &self.conf);
        c
    }
}

fn hostname() -> String {
    output(Command::new("hostname").arg("-s")).trim().to_string()
}

fn wait_for(what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !ready() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200)); // polling interval, not synchronisation
    }
}

/// Whether this machine can run the cluster; in CI it must.
fn can_run_slurm() -> bool {
    let root = output(Command::new("id").arg("-u")).trim() == "0";
    let installed = ["munged", "mungekey", "slurmctld", "slurmd", "sbatch"]
        .iter()
        .all(|p| Command::new("which").arg(p).stdout(Stdio::null()).status().is_ok_and(|s| s.success()));
    if !(root && installed) {
        assert!(std::env::var_os("CI").is_none(), "CI must run the Slurm test: root and slurm-wlm, munge are needed");
        eprintln!("skipped: the Slurm test needs root and the slurm-wlm and munge packages");
    }
    root && installed
}

/// Every file under `dir`, relative to it, sorted.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() { todo.push(p) } else { out.push(p.strip_prefix(dir).unwrap().to_path_buf()) }
        }
    }
    out.sort();
    out
}

#[test]
fn the_slurm_sweep_runs_as_written_and_merges_to_the_unsharded_compare() {
    if !can_run_slurm() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let slurm = Slurm::start(&tmp.path().join("slurm"));
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let (out, sim) = (tmp.path().join("sweep"), env!("CARGO_BIN_EXE_reef-sim"));
    let scenario = "scenarios/quickstart.toml";
    let vary = "--vary policy.eviction=lru,s3fifo,gdsf --vary policy.discovery=none,parent";
    let set = "--set workload.requests=2000 --set topology.generate.t2_cache=50GB";
    // Submitted as the README says, from the repository root; 6 combinations over 4 shards.
    let submitted = output(
        slurm
            .command(&repo.join("scenarios/batch/slurm.sh").to_string_lossy())
            .current_dir(repo)
            .env("REEF_SIM", sim)
            .env("SCENARIO", scenario)
            .env("VARY", vary)
            .env("SET", set)
            .env("SHARDS", "4")
            .env("MEM", "500M")
            .env("OUT", &out),
    );
    assert!(submitted.starts_with("shards: job "), "{submitted}");
    let merged = out.join("all/compare.json");
    wait_for("the merge job", || {
        let queue = slurm.command("squeue").args(["-h", "-o", "%i %T %r"]).output().unwrap();
        let queue = String::from_utf8_lossy(&queue.stdout).into_owned();
        assert!(!queue.contains("DependencyNeverSatisfied"), "a shard failed: {queue}");
        merged.exists() && queue.trim().is_empty()
    });
    let logs = files(&out.join("logs"));
    assert_eq!(logs.len(), 5, "one log per shard and one for the merge: {logs:?}");
    assert_eq!(files(&out.join("shards")).iter().filter(|f| f.ends_with("compare.json")).count(), 4);

    // The same sweep in one run, on this machine.
    let whole = tmp.path().join("whole");
    let mut args = vec!["compare", scenario];
    args.extend(vary.split(' '));
    args.extend(set.split(' '));
    let whole_arg = whole.to_string_lossy().into_owned();
    args.extend(["--quiet", "--out", &whole_arg]);
    output(Command::new(sim).args(&args).current_dir(repo));

    // The merged folder's files (compare.json, tables, figures) are the unsharded run's.
    let top = |dir: &Path| files(dir).into_iter().filter(|f| f.components().count() == 1).collect::<Vec<_>>();
    assert_eq!(top(&out.join("all")), top(&whole));
    assert!(top(&whole).len() > 1, "{:?}", top(&whole));
    for f in top(&whole) {
        let (a, b) = (std::fs::read(out.join("all").join(&f)).unwrap(), std::fs::read(whole.join(&f)).unwrap());
        assert!(a == b, "{} differs between the merged sweep and the unsharded compare", f.display());
    }
    // And each combination's folder, wherever its shard wrote it, is the unsharded run's (but
    // for `run.json`, which holds wall-clock figures).
    let mut combinations = 0;
    let deterministic = |f: &PathBuf| f.components().count() > 1 && !f.ends_with("run.json");
    for f in files(&whole).into_iter().filter(deterministic) {
        let shard = (0..4).map(|i| out.join(format!("shards/{i}")).join(&f)).find(|p| p.exists());
        let shard = shard.unwrap_or_else(|| panic!("{} is in no shard", f.display()));
        assert!(std::fs::read(&shard).unwrap() == std::fs::read(whole.join(&f)).unwrap(), "{}", f.display());
        combinations += usize::from(f.ends_with("summary.json"));
    }
    assert_eq!(combinations, 6);
}
