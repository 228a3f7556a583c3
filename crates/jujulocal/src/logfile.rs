//! The model's debug log (`debug.log`): what `juju debug-log` shows, written by the
//! unit agent (hook output) and by `juju-log`.

use std::io::Write;
use std::path::Path;

/// Appends `message` (one entry per line) to the model's debug log, Juju's way.
pub fn append_log(home: &Path, unit: &str, level: &str, message: &str) {
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(home.join("debug.log"))
    {
        for line in message.lines() {
            let _ = writeln!(
                f,
                "unit-{} {} {level} {line}",
                unit.replace('/', "-"),
                crate::util::now_rfc3339()
            );
        }
    }
}
