//! `jujulocal-juju`: the `juju` client, answered by JujuLocal. Link or copy it as
//! `juju` on a PATH (or pass it as Jubilant's `cli_binary`); see `jujulocal::juju_cli`.

use std::process::ExitCode;

fn main() -> ExitCode {
    let code = jujulocal::juju_cli::main(std::env::args().skip(1).collect());
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}
