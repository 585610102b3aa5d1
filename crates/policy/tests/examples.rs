//! The example policy set in examples/policies validates and passes its own tests.

use std::path::PathBuf;

fn examples() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/policies")
}

#[test]
fn the_example_policies_validate_in_strict_mode() {
    let loaded = custos_policy::load(&examples()).unwrap_or_else(|e| panic!("{e}"));
    assert!(loaded.set.len() >= 20, "{} policies", loaded.set.len());
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
}

#[test]
fn the_example_policy_tests_pass() {
    let dir = examples();
    let loaded = custos_policy::load(&dir).unwrap_or_else(|e| panic!("{e}"));
    let files = custos_policy::load::find_files(&dir, ".test.yaml").expect("test files");
    assert!(!files.is_empty());
    let mut failures = Vec::new();
    let mut count = 0;
    for file in files {
        let suite = custos_policy::load::load_suite(&file).unwrap_or_else(|e| panic!("{e}"));
        for result in suite.run(&loaded.set) {
            count += 1;
            if let Some(f) = result.failure {
                failures.push(format!("{}: {f}", result.name));
            }
        }
    }
    assert!(count >= 40, "{count} cases");
    assert!(failures.is_empty(), "failed:\n{}", failures.join("\n"));
}
