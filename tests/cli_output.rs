//! Output to a reader that goes away early (`segflow runs list | head`) is not an error.

use std::process::Stdio;

use crate::support::Project;

/// Runs segflow with its stdout a pipe whose reading end is already closed.
fn with_closed_stdout(project: &Project, args: &[&str]) -> (Option<i32>, String) {
    let (reader, writer) = std::io::pipe().expect("a pipe");
    drop(reader);
    let output = project
        .command(args)
        .stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .expect("segflow runs");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn a_closed_pipe_ends_the_output_quietly() {
    let project = Project::new();
    project.pipeline(
        "tiny",
        "name: tiny\nsteps:\n  - id: a\n    uses: noop\n  - id: b\n    uses: noop\n    needs: [a]\n",
    );
    project.segflow(&["run", "tiny"]).ok();
    for args in [
        &["schema"][..],
        &["runs", "list"],
        &["graph", "tiny"],
        &["validate", "--json"],
        &["plugins", "list"],
    ] {
        let (code, stderr) = with_closed_stdout(&project, args);
        assert_eq!(code, Some(0), "segflow {args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "segflow {args:?}: {stderr}");
    }
    // A run whose progress cannot be printed still runs to the end, and is recorded.
    let (code, stderr) = with_closed_stdout(&project, &["run", "tiny"]);
    assert_eq!(code, Some(0), "{stderr}");
    let list = project.segflow(&["runs", "list", "--json"]).ok().json();
    assert_eq!(list.as_array().map(Vec::len), Some(2), "{list}");
}
