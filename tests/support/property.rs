//! The runner every `tests/properties.rs` of the workspace shares (included with
//! `#[path]`, so the crates need no common test crate).
//!
//! [`check`] runs one property for [`cases`] cases (`PROPTEST_CASES`, default
//! [`DEFAULT_CASES`]: the short pass of `cargo test`; `make fuzz` sets 100000), turns a
//! panic into a failure with the smallest input proptest shrinks it to, and prints one
//! line that `scripts/property-count.sh` adds up:
//!
//! ```text
//! property cases: NAME N in T s               (every case passed)
//! property failed: NAME after N cases: ...    (the smallest failing input follows)
//! ```
//!
//! The lines are written to the process's stdout directly, past libtest's capture, so
//! they show in a plain `cargo test` run.

#![allow(dead_code)] // each test file uses its own part of it

use std::fmt::Debug;
use std::io::Write;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use proptest::prelude::*;
use proptest::strategy::Strategy;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

/// Cases per property when `PROPTEST_CASES` is not set: enough to find the easy
/// panics, short enough for every `cargo test`.
pub const DEFAULT_CASES: u32 = 2_000;

/// `PROPTEST_CASES` if it is a positive number, else [`DEFAULT_CASES`].
pub fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(DEFAULT_CASES)
}

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    // Nothing to do if stdout is gone; the test's verdict does not depend on it.
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// Runs `test` on [`cases`] values of `strategy`; panics (failing the `#[test]`) with
/// the shrunk input if any case fails or panics.
pub fn check<S>(name: &str, strategy: S, test: impl Fn(S::Value) -> Result<(), TestCaseError>)
where
    S: Strategy,
    S::Value: Debug,
{
    let config = Config {
        cases: cases(),
        // No regression files: a failure prints its input, which goes into a unit test.
        failure_persistence: None,
        max_shrink_iters: 2_000,
        ..Config::default()
    };
    let started = std::time::Instant::now();
    let mut runner = TestRunner::new(config);
    let passed = AtomicU64::new(0);
    let failed = AtomicBool::new(false);
    let result = runner.run(&strategy, |value| {
        let r = match panic::catch_unwind(AssertUnwindSafe(|| test(value))) {
            Ok(r) => r,
            Err(payload) => Err(TestCaseError::fail(format!(
                "panicked: {}",
                panic_message(payload.as_ref())
            ))),
        };
        if failed.load(Ordering::Relaxed) {
            return r; // shrinking: not a new case
        }
        match &r {
            Ok(()) => {
                passed.fetch_add(1, Ordering::Relaxed);
            }
            Err(TestCaseError::Reject(_)) => {}
            Err(TestCaseError::Fail(_)) => failed.store(true, Ordering::Relaxed),
        }
        r
    });
    let n = passed.load(Ordering::Relaxed);
    let secs = started.elapsed().as_secs_f64();
    match result {
        Ok(()) => say(&format!("property cases: {name} {n} in {secs:.1} s")),
        Err(e) => {
            say(&format!("property failed: {name} after {n} cases: {e}"));
            panic!("property {name} failed: {e}");
        }
    }
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into())
}

/// Text from outside, of every awkward kind: empty, printable ASCII, any Unicode,
/// control characters, whitespace only, and (rarely) huge.
pub fn text() -> BoxedStrategy<String> {
    prop_oneof![
        2 => Just(String::new()),
        6 => "[ -~]{0,40}",
        6 => any::<String>(),
        3 => "\\PC{0,40}",
        2 => "[\\x00-\\x1f\\x7f\\u{85}\\u{2028}]{1,8}",
        2 => "[ \\t\\r\\n]{1,6}",
        1 => (any::<char>(), 4_096..70_000usize).prop_map(|(c, n)| c.to_string().repeat(n)),
    ]
    .boxed()
}

/// `text()`, or one of `known` (so the parsers' interesting branches are reached too),
/// or one of `known` with text around it.
pub fn text_or(known: &'static [&'static str]) -> BoxedStrategy<String> {
    if known.is_empty() {
        return text();
    }
    let pick = proptest::sample::select(known);
    prop_oneof![
        3 => text(),
        3 => pick.clone().prop_map(str::to_string),
        1 => (text(), pick.clone(), text()).prop_map(|(a, k, b)| format!("{a}{k}{b}")),
        1 => (pick, text()).prop_map(|(k, b)| format!("{k}{b}")),
    ]
    .boxed()
}
