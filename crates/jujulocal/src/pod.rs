//! Pods: each unit's containers as real Linux mount namespaces sharing one network.
//!
//! A container is started by re-running this binary as `jujulocal __container-init`,
//! which (as root) unshares a mount namespace, builds a root file system in a tmpfs
//! (every top-level host directory bind-mounted, plus the container's own mounts on
//! top), pivots into it and runs the container's command. The charm container's init
//! process just waits; hooks are run inside its namespaces with `setns`. Workload
//! containers run `pebble run --create-dirs --hold` as Juju starts them.
//!
//! Host paths are only read; everything a container writes outside its bind mounts
//! lands in tmpfs or in the pod directory (a temporary directory).

use std::ffi::CString;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::error::Area;
use crate::Error;

#[derive(Debug, Clone)]
pub enum MountKind {
    Bind(PathBuf),
    Tmpfs,
}

#[derive(Debug, Clone)]
pub struct Mount {
    pub target: String,
    pub kind: MountKind,
}

impl Mount {
    pub fn bind(target: &str, source: impl Into<PathBuf>) -> Self {
        Self {
            target: target.into(),
            kind: MountKind::Bind(source.into()),
        }
    }
    pub fn tmpfs(target: &str) -> Self {
        Self {
            target: target.into(),
            kind: MountKind::Tmpfs,
        }
    }
    fn to_arg(&self) -> String {
        match &self.kind {
            MountKind::Bind(src) => format!("{}={}", self.target, src.display()),
            MountKind::Tmpfs => format!("{}=tmpfs", self.target),
        }
    }
    fn from_arg(s: &str) -> Option<Self> {
        let (t, src) = s.split_once('=')?;
        Some(if src == "tmpfs" {
            Mount::tmpfs(t)
        } else {
            Mount::bind(t, src)
        })
    }
}

pub struct ContainerSpec {
    pub root: PathBuf,
    pub mounts: Vec<Mount>,
    /// Join this process's network namespace; `None` with `new_netns` false = host network.
    pub netns_of: Option<u32>,
    pub new_netns: bool,
    /// Run the command as PID 1 of a new PID namespace (as in a Kubernetes container,
    /// where Pebble is PID 1 and gets a fresh boot-id on every start).
    pub new_pidns: bool,
    pub command: Vec<String>,
    pub env: Vec<(String, String)>,
    pub log: PathBuf,
}

/// Starts a container's init process, detached from the caller. Returns its PID.
pub fn start(spec: &ContainerSpec) -> Result<u32, Error> {
    let exe = crate::exe::jujulocal_bin()?;
    std::fs::create_dir_all(&spec.root).map_err(Error::io(Area::Pod, &spec.root))?;
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&spec.log)
        .map_err(Error::io(Area::Pod, &spec.log))?;
    let log2 = log.try_clone().map_err(Error::io(Area::Pod, &spec.log))?;
    let mut cmd = Command::new(exe);
    cmd.arg("__container-init").arg("--root").arg(&spec.root);
    if let Some(pid) = spec.netns_of {
        cmd.arg("--netns-of").arg(pid.to_string());
    }
    if spec.new_netns {
        cmd.arg("--new-netns");
    }
    if spec.new_pidns {
        cmd.arg("--new-pidns");
    }
    for m in &spec.mounts {
        cmd.arg("--mount").arg(m.to_arg());
    }
    cmd.arg("--").args(&spec.command);
    cmd.env_clear();
    cmd.env(
        "PATH",
        "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    );
    for (k, v) in &spec.env {
        cmd.env(k, v);
    }
    cmd.stdin(Stdio::null()).stdout(log).stderr(log2);
    // SAFETY: setsid is async-signal-safe; it detaches the container from our session.
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    let child = cmd
        .spawn()
        .map_err(Error::os(Area::Pod, "starting container"))?;
    Ok(child.id())
}

pub fn is_alive(pid: u32) -> bool {
    // SAFETY: signal 0 only checks for existence.
    unsafe { libc::kill(pid as i32, 0) == 0 }
}

/// Stops a container: its init and everything in its session, and waits until all of
/// them are gone (an old Pebble still shutting down would remove the socket file of
/// the next one).
pub fn stop(pid: u32) {
    let group_alive = || {
        reap(pid);
        // SAFETY: signal 0 only checks whether any process of the group exists.
        unsafe { libc::kill(-(pid as i32), 0) == 0 }
    };
    // SAFETY: plain signal delivery to a process group / process we started.
    unsafe {
        libc::kill(-(pid as i32), libc::SIGTERM);
        libc::kill(pid as i32, libc::SIGTERM);
    }
    for _ in 0..200 {
        if !group_alive() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    unsafe {
        libc::kill(-(pid as i32), libc::SIGKILL);
        libc::kill(pid as i32, libc::SIGKILL);
    }
    for _ in 0..100 {
        if !group_alive() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

fn reap(pid: u32) {
    let mut status = 0;
    // SAFETY: non-blocking wait for a child we may have spawned.
    unsafe {
        libc::waitpid(pid as i32, &mut status, libc::WNOHANG);
    }
}

/// Opens the namespaces of a container's init so a command can be run inside them.
pub struct Enter {
    net: std::fs::File,
    mnt: std::fs::File,
}

impl Enter {
    pub fn open(pid: u32) -> Result<Self, Error> {
        let open = |ns: &str| {
            std::fs::File::open(format!("/proc/{pid}/ns/{ns}")).map_err(Error::os(
                Area::Pod,
                format!("container process {pid} is gone ({ns})"),
            ))
        };
        Ok(Self {
            net: open("net")?,
            mnt: open("mnt")?,
        })
    }

    /// Makes `cmd` start inside the namespaces, in `cwd`.
    pub fn apply(&self, cmd: &mut Command, cwd: &Path) -> Result<(), Error> {
        use std::os::fd::AsRawFd;
        let net = self.net.as_raw_fd();
        let mnt = self.mnt.as_raw_fd();
        let cwd = CString::new(cwd.as_os_str().as_encoded_bytes())
            .map_err(|_| Error::invalid(Area::Pod, "bad cwd"))?;
        // SAFETY: only async-signal-safe syscalls between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                if libc::setns(net, libc::CLONE_NEWNET) != 0
                    || libc::setns(mnt, libc::CLONE_NEWNS) != 0
                {
                    return Err(std::io::Error::last_os_error());
                }
                if libc::chdir(cwd.as_ptr()) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// Inside the new container (runs as `jujulocal __container-init`).

fn cstr(p: &Path) -> std::io::Result<CString> {
    CString::new(p.as_os_str().as_encoded_bytes()).map_err(|_| std::io::Error::other("NUL in path"))
}

fn sys(what: &str, r: libc::c_int) -> std::io::Result<()> {
    if r != 0 {
        let e = std::io::Error::last_os_error();
        return Err(std::io::Error::new(e.kind(), format!("{what}: {e}")));
    }
    Ok(())
}

fn mount(
    src: Option<&Path>,
    target: &Path,
    fstype: Option<&str>,
    flags: libc::c_ulong,
    data: Option<&str>,
) -> std::io::Result<()> {
    let src_c = src.map(cstr).transpose()?;
    let tgt = cstr(target)?;
    let fs = fstype.map(|f| CString::new(f).unwrap_or_default());
    let data_c = data.map(|d| CString::new(d).unwrap_or_default());
    // SAFETY: all pointers are valid NUL-terminated strings or null.
    let r = unsafe {
        libc::mount(
            src_c.as_ref().map_or(std::ptr::null(), |c| c.as_ptr()),
            tgt.as_ptr(),
            fs.as_ref().map_or(std::ptr::null(), |c| c.as_ptr()),
            flags,
            data_c
                .as_ref()
                .map_or(std::ptr::null(), |c| c.as_ptr() as *const libc::c_void),
        )
    };
    sys(
        &format!(
            "mount {} on {}",
            src.map(|s| s.display().to_string()).unwrap_or_default(),
            target.display()
        ),
        r,
    )
}

pub(crate) fn loopback_up() -> std::io::Result<()> {
    // SAFETY: ioctl on a fresh datagram socket with a zeroed ifreq naming "lo".
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_DGRAM, 0);
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let mut req: libc::ifreq = std::mem::zeroed();
        for (i, b) in b"lo\0".iter().enumerate() {
            req.ifr_name[i] = *b as libc::c_char;
        }
        let r = libc::ioctl(fd, libc::SIOCGIFFLAGS, &mut req);
        if r == 0 {
            req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
            libc::ioctl(fd, libc::SIOCSIFFLAGS, &mut req);
        }
        libc::close(fd);
    }
    Ok(())
}

struct InitArgs {
    root: PathBuf,
    netns_of: Option<u32>,
    new_netns: bool,
    new_pidns: bool,
    mounts: Vec<Mount>,
    command: Vec<String>,
}

fn parse_init(args: &[String]) -> std::io::Result<InitArgs> {
    let bad = |m: &str| std::io::Error::other(format!("__container-init: {m}"));
    let mut a = InitArgs {
        root: PathBuf::new(),
        netns_of: None,
        new_netns: false,
        new_pidns: false,
        mounts: vec![],
        command: vec![],
    };
    let mut it = args.iter();
    while let Some(x) = it.next() {
        match x.as_str() {
            "--root" => a.root = it.next().ok_or_else(|| bad("--root"))?.into(),
            "--netns-of" => a.netns_of = it.next().and_then(|p| p.parse().ok()),
            "--new-netns" => a.new_netns = true,
            "--new-pidns" => a.new_pidns = true,
            "--mount" => a.mounts.push(
                it.next()
                    .and_then(|m| Mount::from_arg(m))
                    .ok_or_else(|| bad("--mount"))?,
            ),
            "--" => {
                a.command = it.cloned().collect();
                break;
            }
            other => return Err(bad(&format!("unknown argument {other}"))),
        }
    }
    Ok(a)
}

/// Builds the container's root and execs its command (or waits forever if none).
pub fn container_init(args: &[String]) -> std::io::Result<()> {
    let a = parse_init(args)?;
    // SAFETY: namespace syscalls on our own, single-threaded process.
    unsafe {
        if let Some(pid) = a.netns_of {
            let f = std::fs::File::open(format!("/proc/{pid}/ns/net"))?;
            use std::os::fd::AsRawFd;
            sys("setns net", libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET))?;
        }
        let mut flags = libc::CLONE_NEWNS;
        if a.new_netns {
            flags |= libc::CLONE_NEWNET;
        }
        if a.new_pidns {
            flags |= libc::CLONE_NEWPID;
        }
        sys("unshare", libc::unshare(flags))?;
        if a.new_pidns {
            // The next child is PID 1 of the new namespace; this process only waits for it.
            match libc::fork() {
                -1 => return Err(std::io::Error::last_os_error()),
                0 => {}
                child => {
                    let mut status = 0;
                    libc::waitpid(child, &mut status, 0);
                    let code = if libc::WIFEXITED(status) {
                        libc::WEXITSTATUS(status)
                    } else {
                        128 + libc::WTERMSIG(status)
                    };
                    std::process::exit(code);
                }
            }
        }
    }
    if a.new_netns {
        loopback_up()?;
    }
    mount(
        None,
        Path::new("/"),
        None,
        libc::MS_REC | libc::MS_PRIVATE,
        None,
    )?;
    let root = &a.root;
    mount(
        Some(Path::new("tmpfs")),
        root,
        Some("tmpfs"),
        0,
        Some("mode=755"),
    )?;
    // Unbindable, so that bind-mounting the host directory that contains it does not recurse.
    mount(None, root, None, libc::MS_UNBINDABLE, None)?;

    // Top-level directories that some mount needs to create entries in.
    let needs_new = |top: &str| -> bool {
        a.mounts.iter().any(|m| {
            let p = Path::new(&m.target);
            p.starts_with(format!("/{top}")) && !p.exists() && p.components().count() > 2
        })
    };
    // Overlay upper layers need a bindable file system of their own.
    let ovl = root.join(".overlay");
    std::fs::create_dir(&ovl)?;
    mount(
        Some(Path::new("tmpfs")),
        &ovl,
        Some("tmpfs"),
        0,
        Some("mode=700"),
    )?;
    for entry in std::fs::read_dir("/")? {
        let entry = entry?;
        let name = entry.file_name();
        let name_s = name.to_string_lossy().to_string();
        let host = Path::new("/").join(&name);
        let dest = root.join(&name);
        let ft = entry.file_type()?;
        if a.new_pidns && name_s == "proc" {
            // A proc file system of the new PID namespace, mounted below.
            std::fs::create_dir(&dest)?;
            continue;
        }
        if ft.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(&host)?, &dest)?;
        } else if ft.is_dir() {
            std::fs::create_dir(&dest)?;
            if needs_new(&name_s) {
                // An overlay lets the container add entries without writing to the host.
                let up = ovl.join(&name_s).join("upper");
                let wk = ovl.join(&name_s).join("work");
                std::fs::create_dir_all(&up)?;
                std::fs::create_dir_all(&wk)?;
                let opts = format!(
                    "lowerdir={},upperdir={},workdir={}",
                    host.display(),
                    up.display(),
                    wk.display()
                );
                mount(
                    Some(Path::new("overlay")),
                    &dest,
                    Some("overlay"),
                    0,
                    Some(&opts),
                )?;
            } else {
                mount(Some(&host), &dest, None, libc::MS_BIND | libc::MS_REC, None)?;
            }
        } else if ft.is_file() {
            std::fs::File::create(&dest)?;
            mount(Some(&host), &dest, None, libc::MS_BIND, None)?;
        }
    }
    if a.new_pidns {
        mount(
            Some(Path::new("proc")),
            &root.join("proc"),
            Some("proc"),
            libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
            None,
        )?;
    }
    // The container's own mounts, shallowest first.
    let mut mounts = a.mounts.clone();
    mounts.sort_by_key(|m| Path::new(&m.target).components().count());
    for m in &mounts {
        let dest = root.join(m.target.trim_start_matches('/'));
        match &m.kind {
            MountKind::Bind(src) => {
                if src.is_dir() {
                    std::fs::create_dir_all(&dest)?;
                } else {
                    if let Some(parent) = dest.parent() {
                        std::fs::create_dir_all(parent)?;
                    }
                    if !dest.exists() {
                        std::fs::File::create(&dest)?;
                    }
                }
                mount(Some(src), &dest, None, libc::MS_BIND | libc::MS_REC, None)?;
            }
            MountKind::Tmpfs => {
                std::fs::create_dir_all(&dest)?;
                mount(
                    Some(Path::new("tmpfs")),
                    &dest,
                    Some("tmpfs"),
                    0,
                    Some("mode=1777"),
                )?;
            }
        }
    }
    // Enter the new root.
    std::env::set_current_dir(root)?;
    let dot = CString::new(".").unwrap_or_default();
    // SAFETY: pivot_root(".", ".") stacks the old root on the new one; then detach it.
    unsafe {
        sys(
            "pivot_root",
            libc::syscall(libc::SYS_pivot_root, dot.as_ptr(), dot.as_ptr()) as libc::c_int,
        )?;
        sys(
            "umount old root",
            libc::umount2(dot.as_ptr(), libc::MNT_DETACH),
        )?;
    }
    std::env::set_current_dir("/")?;
    if a.command.is_empty() {
        loop {
            // SAFETY: waits for a signal; SIGTERM's default action ends the process.
            unsafe {
                libc::pause();
            }
        }
    }
    let err = Command::new(&a.command[0]).args(&a.command[1..]).exec();
    Err(std::io::Error::other(format!(
        "exec {}: {err}",
        a.command[0]
    )))
}
