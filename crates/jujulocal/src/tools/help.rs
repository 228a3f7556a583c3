//! `--help` and `-h` on a hook tool: Juju prints the tool's usage and exits 0 (charms
//! on ops 2.x probe `storage-get --help`), in or out of a hook.

/// Whether the arguments ask for help (before any `--`).
pub fn asked(args: &[String]) -> bool {
    args.iter()
        .take_while(|a| *a != "--")
        .any(|a| a == "--help" || a == "-h")
}

/// The tool's usage text.
pub fn text(tool: &str) -> String {
    let summary = match tool {
        "config-get" => "print application configuration",
        "is-leader" => "print application leadership status",
        "relation-ids" => "list all relation ids for a relation name",
        "relation-list" => "list relation units",
        "relation-get" => "get relation settings",
        "relation-set" => "set relation settings",
        "relation-model-get" => "get details about the model hosting a related application",
        "status-set" => "set status information",
        "status-get" => "print status information",
        "application-version-set" => "specify which version of the application is deployed",
        "juju-log" => "write a message to the juju log",
        "state-get" => "print server-side-state value",
        "state-set" => "set server-side-state values",
        "state-delete" => "delete server-side-state key value pairs",
        "secret-add" => "add a new secret",
        "secret-get" => "get the content of a secret",
        "secret-set" => "update an existing secret",
        "secret-info-get" => "get a secret's metadata info",
        "secret-ids" => "print secret ids",
        "secret-grant" => "grant access to a secret",
        "secret-revoke" => "revoke access to a secret",
        "secret-remove" => "remove an existing secret",
        "network-get" => "get network config",
        "open-port" => "register a request to open a port or port range",
        "close-port" => "register a request to close a port or port range",
        "opened-ports" => "list all ports or port ranges opened by the unit",
        "action-get" => "get action parameters",
        "action-set" => "set action results",
        "action-fail" => "set action fail status with message",
        "action-log" => "record a progress message for the current action",
        "goal-state" => "print the status of the charm's peers and related units",
        "storage-get" => "print information for the storage instance with the specified ID",
        "storage-list" => "list storage attached to the unit",
        _ => "a Juju hook tool",
    };
    format!("Usage: {tool} [options] ...\n\nSummary:\n{summary}\n\nOptions:\n-h, --help (= false)\n    show help on a command or other topic\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn help_is_asked_before_the_end_of_flags_only() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert!(asked(&s(&["--help"])));
        assert!(asked(&s(&["data", "-h"])));
        assert!(!asked(&s(&["--", "--help"])));
        assert!(!asked(&s(&["--format=json"])));
        assert!(text("storage-get").starts_with("Usage: storage-get"));
    }

    #[test]
    fn every_tool_has_a_summary_and_help_exits_zero() {
        for name in super::super::names() {
            assert!(!text(name).contains("a Juju hook tool"), "{name}");
        }
        assert_eq!(super::super::main("storage-get", vec!["--help".into()]), 0);
    }
}
