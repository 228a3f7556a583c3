//! Where the `jujulocal` binary is: hook tools are links to it, and pod containers
//! start through it.

use std::path::{Path, PathBuf};

use crate::error::Area;
use crate::Error;

/// The `jujulocal` binary (hook tools link to it; containers start through it):
/// `$JUJULOCAL_BIN`, else this executable if it is jujulocal, else one next to it.
pub fn jujulocal_bin() -> Result<PathBuf, Error> {
    let exe = std::env::var_os("JUJULOCAL_BIN")
        .map(PathBuf::from)
        .or_else(|| std::env::current_exe().ok())
        .ok_or_else(|| Error::invalid(Area::Model, "cannot find the jujulocal binary"))?;
    resolve_jujulocal(&exe)
}

/// The binary to link hook tools to: `jujulocal` itself (tests may run from another binary).
fn resolve_jujulocal(exe: &Path) -> Result<PathBuf, Error> {
    if exe.file_name().and_then(|n| n.to_str()) == Some("jujulocal") {
        return Ok(exe.to_path_buf());
    }
    let sibling = exe.parent().map(|p| p.join("jujulocal"));
    let up = exe
        .parent()
        .and_then(|p| p.parent())
        .map(|p| p.join("jujulocal"));
    for c in [sibling, up].into_iter().flatten() {
        if c.exists() {
            return Ok(c);
        }
    }
    Err(Error::invalid(
        Area::Model,
        format!(
            "cannot find the jujulocal binary next to {}; set JUJULOCAL_BIN",
            exe.display()
        ),
    ))
}
