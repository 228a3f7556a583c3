//! The cluster network's plumbing, below the controller (it knows nothing of models):
//! a network namespace held by a small process (`jujulocal __cluster-netns CIDR`), a
//! Linux bridge in it, one veth pair per pod between the bridge and the pod's own
//! network namespace, a registry of the subnets in use on this machine, and the
//! pods' `/etc/hosts`.
//!
//! Nothing is ever created in the host's network namespace: every `ip` command runs
//! inside the holder's or the pod's namespace (`setns` before exec). When the holder
//! ends, its namespace goes, and with it the bridge and every veth pair.

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::error::Area;
use crate::Error;

/// The bridge inside the holder's namespace.
pub const BRIDGE: &str = "br0";
/// The pod's end of its veth pair.
pub const POD_INTERFACE: &str = "eth0";
/// Subnets are `10.244.<n>.0/24`, as flannel hands one /24 per node out of
/// `10.244.0.0/16`: private, and unlikely to be routed anywhere on a test machine
/// (it never is by JujuLocal: the host has no route to it).
const FIRST_OCTETS: &str = "10.244";

/// One model's subnet: `10.244.<index>.0/24`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subnet(pub u8);

impl Subnet {
    pub fn cidr(self) -> String {
        format!("{FIRST_OCTETS}.{}.0/24", self.0)
    }
    /// The address of host `h` (2..=254; .1 is left for a gateway, as CNIs do).
    pub fn host(self, h: u8) -> String {
        format!("{FIRST_OCTETS}.{}.{h}", self.0)
    }
    /// The host number of an address of this subnet.
    pub fn host_of(self, addr: &str) -> Option<u8> {
        let prefix = format!("{FIRST_OCTETS}.{}.", self.0);
        addr.strip_prefix(&prefix)?.parse().ok()
    }
}

/// The lowest host number not in `taken` (pure).
pub fn free_host(taken: &[u8]) -> Option<u8> {
    (2..=254u8).find(|h| !taken.contains(h))
}

/// The bridge-side name of a pod's veth pair (unique in the holder's namespace).
pub fn veth_name(host: u8) -> String {
    format!("vh{host}")
}

// ----- the registry of subnets ---------------------------------------------------------

/// Where the subnets in use are recorded: one file per subnet holding the pid of
/// its holder. `$JUJULOCAL_CLUSTER_DIR`, else `/tmp/jujulocal-cluster`.
fn registry_dir() -> PathBuf {
    std::env::var_os("JUJULOCAL_CLUSTER_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/tmp/jujulocal-cluster"))
}

/// Holds an exclusive `flock` on the registry while alive.
struct Locked(#[allow(dead_code)] std::fs::File);

impl Locked {
    fn take(dir: &Path) -> Result<Self, Error> {
        std::fs::create_dir_all(dir).map_err(Error::io(Area::Pod, dir))?;
        let path = dir.join(".lock");
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(Error::io(Area::Pod, &path))?;
        use std::os::fd::AsRawFd;
        // SAFETY: flock on a file descriptor we own; released when it is closed.
        if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) } != 0 {
            return Err(Error::os(Area::Pod, "locking the subnet registry")(
                std::io::Error::last_os_error(),
            ));
        }
        Ok(Self(f))
    }
}

/// Whether `pid` is the holder of `cidr` (a recycled pid is not).
pub fn holder_alive(pid: u32, cidr: &str) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| {
        let args: Vec<&[u8]> = c.split(|b| *b == 0).collect();
        args.windows(2)
            .any(|w| w[0] == b"__cluster-netns" && w[1] == cidr.as_bytes())
    })
}

/// Picks a subnet no live holder uses and starts its holder, under the registry
/// lock (so two models, or two test runs, never get the same one).
pub fn allocate(log: &Path) -> Result<(Subnet, u32), Error> {
    let dir = registry_dir();
    let _lock = Locked::take(&dir)?;
    for n in 1..=254u8 {
        let subnet = Subnet(n);
        let slot = dir.join(subnet.cidr().replace('/', "-"));
        if let Ok(text) = std::fs::read_to_string(&slot) {
            if text
                .trim()
                .parse::<u32>()
                .is_ok_and(|pid| holder_alive(pid, &subnet.cidr()))
            {
                continue;
            }
        }
        let pid = start_holder(&subnet.cidr(), log)?;
        std::fs::write(&slot, format!("{pid}\n")).map_err(Error::io(Area::Pod, &slot))?;
        return Ok((subnet, pid));
    }
    Err(Error::Refused(
        "no free cluster subnet: 254 JujuLocal models have pods on this machine".into(),
    ))
}

/// Stops a holder (its namespace, bridge and veths go with it) and frees its subnet.
pub fn release(subnet: Subnet, pid: u32) {
    if holder_alive(pid, &subnet.cidr()) {
        crate::pod::stop(pid);
    }
    let dir = registry_dir();
    let Ok(_lock) = Locked::take(&dir) else {
        return;
    };
    let slot = dir.join(subnet.cidr().replace('/', "-"));
    if std::fs::read_to_string(&slot).is_ok_and(|t| t.trim() == pid.to_string()) {
        let _ = std::fs::remove_file(slot);
    }
}

// ----- the holder ----------------------------------------------------------------------

fn start_holder(cidr: &str, log: &Path) -> Result<u32, Error> {
    let exe = crate::exe::jujulocal_bin()?;
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .map_err(Error::io(Area::Pod, log))?;
    let err = out.try_clone().map_err(Error::io(Area::Pod, log))?;
    let mut cmd = Command::new(exe);
    cmd.arg("__cluster-netns")
        .arg(cidr)
        .env_clear()
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err);
    // SAFETY: setsid is async-signal-safe; it detaches the holder from our session.
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    let pid = cmd
        .spawn()
        .map_err(Error::os(Area::Pod, "starting the cluster network"))?
        .id();
    // Ready once its network namespace is no longer ours.
    let ours = std::fs::read_link("/proc/self/ns/net").ok();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::time::Instant::now() < deadline {
        let theirs = std::fs::read_link(format!("/proc/{pid}/ns/net")).ok();
        if theirs.is_some() && theirs != ours && holder_alive(pid, cidr) {
            ip_batch(
                pid,
                &[
                    format!("link add {BRIDGE} type bridge"),
                    format!("link set {BRIDGE} up"),
                ],
            )?;
            return Ok(pid);
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    crate::pod::stop(pid);
    Err(Error::invalid(
        Area::Pod,
        format!("the cluster network did not start; see {}", log.display()),
    ))
}

/// `jujulocal __cluster-netns CIDR`: a new network namespace (loopback up), kept for
/// as long as this process lives.
pub fn holder_main() -> std::io::Result<()> {
    // SAFETY: unshare on our own single-threaded process.
    if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    crate::pod::loopback_up()?;
    loop {
        // SAFETY: waits for a signal; SIGTERM's default action ends the process.
        unsafe {
            libc::pause();
        }
    }
}

// ----- ip, inside a namespace ----------------------------------------------------------

fn ip_bin() -> &'static str {
    ["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .unwrap_or("ip")
}

/// Runs `ip -batch -` with `lines` inside the network namespace of process `pid`.
pub fn ip_batch(pid: u32, lines: &[String]) -> Result<(), Error> {
    let ns = format!("/proc/{pid}/ns/net");
    let f = std::fs::File::open(&ns).map_err(Error::io(Area::Pod, &ns))?;
    let mut cmd = Command::new(ip_bin());
    cmd.args(["-batch", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    use std::os::fd::AsRawFd;
    let fd = f.as_raw_fd();
    // SAFETY: setns is async-signal-safe; `f` outlives the spawn.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setns(fd, libc::CLONE_NEWNET) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd
        .spawn()
        .map_err(Error::os(Area::Pod, "running ip (iproute2)"))?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(format!("{}\n", lines.join("\n")).as_bytes());
    }
    let out = child
        .wait_with_output()
        .map_err(Error::os(Area::Pod, "running ip (iproute2)"))?;
    drop(f);
    if out.status.success() {
        return Ok(());
    }
    Err(Error::invalid(
        Area::Pod,
        format!(
            "ip {:?} in the namespace of {pid}: {}",
            lines,
            String::from_utf8_lossy(&out.stderr).trim()
        ),
    ))
}

/// Wires a pod into the bridge: a veth pair, the pod's end `eth0` with `addr`.
pub fn attach(holder: u32, pod: u32, subnet: Subnet, host: u8) -> Result<(), Error> {
    let veth = veth_name(host);
    ip_batch(
        holder,
        &[
            format!("link add {veth} type veth peer name {POD_INTERFACE} netns {pod}"),
            format!("link set {veth} master {BRIDGE}"),
            format!("link set {veth} up"),
        ],
    )?;
    ip_batch(
        pod,
        &[
            format!("addr add {}/24 dev {POD_INTERFACE}", subnet.host(host)),
            format!("link set {POD_INTERFACE} up"),
        ],
    )
}

/// Removes a pod's veth pair (already gone if the pod's namespace went first).
pub fn detach(holder: u32, host: u8) {
    let _ = ip_batch(holder, &[format!("link del {}", veth_name(host))]);
}

// ----- /etc/hosts ----------------------------------------------------------------------

/// One pod as the hosts file names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostEntry {
    pub app: String,
    pub number: String,
    pub address: String,
}

/// A pod's `/etc/hosts` (pure): loopback, then every pod of the model by its stable
/// names `<app>-<n>.<app>-endpoints` and `<...>.<model>.svc.cluster.local`, the pod
/// itself also by its host name `<app>-<n>`.
pub fn hosts_file(model: &str, own: Option<&HostEntry>, all: &[HostEntry]) -> String {
    let mut s = String::from(
        "# Kubernetes-style hosts file, managed by JujuLocal's cluster network.\n\
         127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n",
    );
    for e in all {
        let pod = format!("{}-{}", e.app, e.number);
        let short = format!("{pod}.{}-endpoints", e.app);
        s.push_str(&format!(
            "{}\t{short}.{model}.svc.cluster.local\t{short}",
            e.address
        ));
        if own == Some(e) {
            s.push_str(&format!("\t{pod}"));
        }
        s.push('\n');
    }
    s
}

/// Rewrites a hosts file in place: containers bind-mount the file itself, so a new
/// file (rename) would not be seen; one write keeps the window short.
pub fn write_in_place(path: &Path, text: &str) -> Result<(), Error> {
    if std::fs::read_to_string(path).ok().as_deref() == Some(text) {
        return Ok(());
    }
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .open(path)
        .map_err(Error::io(Area::Pod, path))?;
    f.write_all(text.as_bytes())
        .map_err(Error::io(Area::Pod, path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnets_and_hosts() {
        let s = Subnet(7);
        assert_eq!(s.cidr(), "10.244.7.0/24");
        assert_eq!(s.host(2), "10.244.7.2");
        assert_eq!(s.host_of("10.244.7.12"), Some(12));
        assert_eq!(s.host_of("10.244.8.12"), None);
        assert_eq!(free_host(&[]), Some(2));
        assert_eq!(free_host(&[2, 3, 5]), Some(4));
        assert_eq!(free_host(&(2..=254).collect::<Vec<u8>>()), None);
        assert_eq!(veth_name(254), "vh254");
    }

    #[test]
    fn the_hosts_file_names_every_pod_and_the_pod_itself() {
        let e = |app: &str, n: &str, a: &str| HostEntry {
            app: app.into(),
            number: n.into(),
            address: a.into(),
        };
        let all = [e("db", "0", "10.244.1.2"), e("db", "3", "10.244.1.3")];
        let text = hosts_file("m1", Some(&all[1]), &all);
        assert!(text.contains("127.0.0.1\tlocalhost\n"));
        assert!(text
            .contains("10.244.1.2\tdb-0.db-endpoints.m1.svc.cluster.local\tdb-0.db-endpoints\n"));
        assert!(text.contains(
            "10.244.1.3\tdb-3.db-endpoints.m1.svc.cluster.local\tdb-3.db-endpoints\tdb-3\n"
        ));
    }

    #[test]
    fn a_recycled_pid_is_no_holder() {
        assert!(!holder_alive(std::process::id(), "10.244.1.0/24"));
        assert!(!holder_alive(u32::MAX, "10.244.1.0/24"));
    }
}
