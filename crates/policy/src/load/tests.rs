use std::fs;

use super::*;
use crate::store::PolicyStore;

const A: &str = "@id(\"a\") permit (principal in k8s::Group::\"readers\", action in k8s::Action::\"readOnly\", resource);\n";
const B: &str = "@id(\"b\") forbid (principal, action, resource) when { context.agent };\n";

#[test]
fn a_folder_is_searched_recursively_in_path_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    fs::create_dir_all(dir.path().join("team/sub")).expect("mkdir");
    fs::create_dir_all(dir.path().join("..2024_01_01")).expect("mkdir");
    fs::write(dir.path().join("team/sub/b.cedar"), B).expect("write");
    fs::write(dir.path().join("a.cedar"), A).expect("write");
    fs::write(dir.path().join("..2024_01_01/a.cedar"), A).expect("write");
    fs::write(dir.path().join(".hidden.cedar"), "not cedar").expect("write");
    fs::write(dir.path().join("notes.md"), "not cedar").expect("write");
    fs::write(dir.path().join("tests.test.yaml"), "cases: []").expect("write");
    let loaded = load(dir.path()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(loaded.set.len(), 2);
    let names: Vec<_> = loaded
        .files
        .iter()
        .map(|f| {
            f.strip_prefix(dir.path())
                .expect("inside")
                .display()
                .to_string()
        })
        .collect();
    assert_eq!(names, ["a.cedar", "team/sub/b.cedar"]);
    let tests = find_files(dir.path(), ".test.yaml").expect("find");
    assert_eq!(tests.len(), 1);
}

#[test]
fn a_single_file_loads_and_errors_name_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("one.cedar");
    fs::write(
        &file,
        format!("{A}\npermit (principal, action, resource) when {{ 1 }};\n"),
    )
    .expect("write");
    let err = load(&file).expect_err("invalid");
    let d = &err.diagnostics()[0];
    assert_eq!(d.location.file, file.display().to_string());
    assert_eq!((d.location.line, d.location.column), (3, 45), "{d}");
    assert_eq!(
        d.policy_id.as_deref(),
        Some("one.cedar#2"),
        "ids use the file name only"
    );
}

#[test]
fn empty_and_missing_folders_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    assert!(matches!(
        load(dir.path()),
        Err(PolicyError::NoPolicies { .. })
    ));
    assert!(matches!(
        load(&dir.path().join("missing")),
        Err(PolicyError::Io { .. })
    ));
}

#[test]
fn a_reload_with_a_broken_file_keeps_the_last_good_set() {
    let dir = tempfile::tempdir().expect("tempdir");
    fs::write(dir.path().join("a.cedar"), A).expect("write");
    let store = PolicyStore::new(load(dir.path()).expect("valid").set);
    let before = store.current();
    assert_eq!(before.len(), 1);

    fs::write(
        dir.path().join("b.cedar"),
        "forbid (principal, action, resource) when { context.nope };",
    )
    .expect("write");
    let err = store.reload(dir.path()).expect_err("refused");
    assert!(err.to_string().contains("b.cedar:1:"), "{err}");
    assert!(
        std::sync::Arc::ptr_eq(&before, &store.current()),
        "the old set stays"
    );

    fs::write(dir.path().join("b.cedar"), B).expect("write");
    let reloaded = store.reload(dir.path()).expect("valid");
    assert_eq!((reloaded.policies, reloaded.files), (2, 2));
    assert_eq!(store.current().len(), 2);
    assert_eq!(before.len(), 1, "readers of the old set are undisturbed");
}

#[test]
fn test_files_resolve_body_files_beside_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    fs::write(dir.path().join("pod.json"), r#"{"kind":"Pod"}"#).expect("write");
    fs::write(
        dir.path().join("t.test.yaml"),
        "cases:\n- name: c\n  user: u\n  verb: create\n  path: /api/v1/namespaces/a/pods\n  bodyFile: pod.json\n  expect: deny\n",
    )
    .expect("write");
    let suite = load_suite(&dir.path().join("t.test.yaml")).expect("suite");
    assert_eq!(
        suite.cases[0].body_raw.as_deref(),
        Some(r#"{"kind":"Pod"}"#)
    );
    fs::write(
        dir.path().join("u.test.yaml"),
        "cases:\n- name: c\n  user: u\n  verb: get\n  path: /version\n  bodyFile: missing.json\n  expect: deny\n",
    )
    .expect("write");
    let err = load_suite(&dir.path().join("u.test.yaml")).expect_err("missing body");
    assert!(err.to_string().contains("missing.json"), "{err}");
}
