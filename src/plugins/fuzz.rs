//! Property tests: loading a plugin.yaml never panics, whatever the file holds, and every
//! diagnostic points inside the file. `PROPTEST_CASES` sets how many inputs each property tries.

use proptest::prelude::*;

use super::load::load_plugin;
use crate::spec::fuzz::{apply, edits};
use crate::spec::source::Source;

const GOOD: &str = "name: score\nversion: 1.0.0\nprotocol: 1\nkinds:\n  run:\n    description: Scores customers\n    executable: run.sh\n    args: [\"--fast\"]\n    schema: { type: object, properties: { x: { type: number } }, required: [x] }\n    inputs: { min: 1, max: 1, format: csv }\n    writes: [main]\n    outputs: [scored]\n";

/// Loads `text` as plugins/score/plugin.yaml beside an executable run.sh; true when it loads.
fn check(text: &str) -> bool {
    let root = tempfile::tempdir().expect("a temp dir");
    let dir = root.path().join("score");
    std::fs::create_dir_all(&dir).expect("the plugin folder");
    let program = dir.join("run.sh");
    std::fs::write(&program, "#!/bin/sh\n").expect("the program");
    std::fs::set_permissions(
        &program,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .expect("an executable program");
    let manifest = dir.join("plugin.yaml");
    std::fs::write(&manifest, text).expect("the manifest");
    let lines = Source::new("", text).lines().count();
    let result = load_plugin(&manifest);
    let loaded = result.is_ok();
    let diagnostics = match result {
        Ok((_, warnings)) => warnings.diagnostics,
        Err(problems) => {
            assert!(
                !problems.diagnostics.is_empty(),
                "a failure without a diagnostic"
            );
            problems.diagnostics
        }
    };
    for diagnostic in diagnostics {
        if let Some(span) = diagnostic.span {
            assert!(
                span.line >= 1 && span.line <= lines.max(1),
                "{diagnostic:?} outside {lines} lines"
            );
        }
    }
    loaded
}

#[test]
fn the_good_manifest_loads() {
    assert!(check(GOOD));
}

proptest! {
    #[test]
    fn arbitrary_manifest_text_never_panics(text in any::<String>()) {
        check(&text);
    }

    #[test]
    fn yaml_like_manifests_never_panic(text in "[ a-z:\\-\\[\\]{},'\"\n#&*!|>$.0-9/]{0,200}") {
        check(&text);
    }

    #[test]
    fn edited_manifests_never_panic(edits in edits(GOOD.len())) {
        check(&apply(GOOD, &edits));
    }
}
