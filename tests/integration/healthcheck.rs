//! `meterwatch healthcheck` against a running daemon, and without one.

use crate::support::{meterwatch, stderr, stdout};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

#[test]
fn healthcheck_passes_against_a_live_daemon_and_fails_without_one() {
    // The stdin source runs while stdin is open; port 0, and the log says which one it got.
    let mut daemon = Command::new(env!("CARGO_BIN_EXE_meterwatch"))
        .args(["run", "--rules", "rules", "--listen", "127.0.0.1:0"])
        .args(["--log-format", "json"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("runs");
    let stdin = daemon.stdin.take().expect("piped stdin");
    let mut logs = BufReader::new(daemon.stderr.take().expect("piped stderr")).lines();
    let listen = loop {
        let Some(Ok(line)) = logs.next() else {
            panic!("the daemon stopped before serving HTTP");
        };
        let log: serde_json::Value = serde_json::from_str(&line).expect("a JSON log line");
        if let Some(listen) = log["listen"].as_str() {
            break listen.to_owned();
        }
    };
    let url = format!("http://{listen}/healthz");

    let output = meterwatch(&["healthcheck", "--url", &url]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(stdout(&output), format!("ok: {url} answered 200\n"));

    drop(stdin);
    assert!(daemon.wait().expect("exits").success());
    let output = meterwatch(&["healthcheck", "--url", &url]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).starts_with("unhealthy: "),
        "{}",
        stderr(&output)
    );
}
