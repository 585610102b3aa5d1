use super::*;

fn compile(files: &[(&str, &str)]) -> Result<Compiled, PolicyError> {
    let sources: Vec<Source> = files
        .iter()
        .map(|(name, text)| Source {
            name: (*name).to_owned(),
            text: (*text).to_owned(),
        })
        .collect();
    PolicySet::compile(&sources)
}

fn problems(files: &[(&str, &str)]) -> Vec<String> {
    match compile(files) {
        Ok(_) => panic!("accepted"),
        Err(e) => e.diagnostics().iter().map(ToString::to_string).collect(),
    }
}

const GOOD: &str = r#"// comment
@id("read")
permit (principal in k8s::Group::"readers", action in k8s::Action::"readOnly", resource);
"#;

#[test]
fn a_syntax_error_is_reported_at_its_line_and_column() {
    let p = problems(&[
        ("good.cedar", GOOD),
        ("bad.cedar", "permit (principal, action, resource);\n\npermit (principal, action, resource)\n  when { resource.x == };\n"),
    ]);
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(
        p[0].starts_with("bad.cedar:4:24: unexpected token `}`"),
        "{p:?}"
    );
}

#[test]
fn a_type_error_is_reported_in_the_file_it_is_in() {
    let p = problems(&[
        ("a.cedar", GOOD),
        (
            "b.cedar",
            "@id(\"x\")\npermit (principal, action, resource is k8s::Resource)\n  when { resource.namspace == \"prod\" };\n",
        ),
    ]);
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(p[0].starts_with("b.cedar:3:10: "), "{p:?}");
    assert!(
        p[0].contains("namspace") && p[0].contains("[policy x]"),
        "{p:?}"
    );
}

#[test]
fn unsafe_optional_attribute_access_is_refused_once() {
    let p = problems(&[(
        "a.cedar",
        "permit (principal, action, resource is k8s::Resource) when { resource.namespace == \"a\" };",
    )]);
    assert_eq!(p.len(), 1, "one mistake, one message: {p:?}");
    assert!(p[0].starts_with("a.cedar:1:62: "), "{p:?}");
    assert!(p[0].contains("has namespace"), "{p:?}");
}

#[test]
fn unknown_actions_and_types_are_refused() {
    let p = problems(&[(
        "a.cedar",
        "permit (principal, action == k8s::Action::\"exec\", resource);\npermit (principal is k8s::Robot, action, resource);\n",
    )]);
    assert_eq!(p.len(), 2, "{p:?}");
    assert!(p[0].starts_with("a.cedar:1:"), "{p:?}");
    assert!(p[1].starts_with("a.cedar:2:"), "{p:?}");
}

#[test]
fn annotation_problems_point_at_the_annotation() {
    let p = problems(&[(
        "r.cedar",
        "@id(\"r\")\n@outcome(\"review\")\n@approvers(\"sre\")\n  @hold(\"two minutes\")\npermit (principal, action, resource);\n",
    )]);
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(
        p[0].starts_with("r.cedar:4:3: @hold(\"two minutes\")"),
        "{p:?}"
    );
}

#[test]
fn every_problem_in_every_file_is_reported_together() {
    let p = problems(&[
        ("a.cedar", "@id(\"dup\") permit (principal, action, resource);\n@approvers(\"x\") permit (principal, action, resource);"),
        ("b.cedar", "@id(\"dup\") forbid (principal, action, resource) when { context.nope };"),
    ]);
    assert_eq!(p.len(), 3, "{p:?}");
    assert!(
        p[0].starts_with("a.cedar:2:1: @approvers without @outcome"),
        "{p:?}"
    );
    assert!(
        p[1].starts_with("b.cedar:1:1: duplicate policy id \"dup\" (first at a.cedar:1:1)"),
        "{p:?}"
    );
    assert!(p[2].starts_with("b.cedar:1:"), "{p:?}");
}

#[test]
fn templates_are_refused() {
    let p = problems(&[(
        "t.cedar",
        "\n\npermit (principal == ?principal, action, resource);",
    )]);
    assert!(p[0].starts_with("t.cedar:3:1: policy templates"), "{p:?}");
}

#[test]
fn policies_without_an_id_are_named_by_file_and_position() {
    let c = compile(&[("p.cedar", "permit (principal, action, resource);\n@id(\"named\")\nforbid (principal, action, resource) when { context.agent };\npermit (principal, action, resource);")])
        .expect("valid");
    let ids: Vec<(&str, usize)> = c
        .set
        .policies()
        .iter()
        .map(|p| (p.id.as_str(), p.location.line))
        .collect();
    assert_eq!(ids, [("p.cedar#1", 1), ("named", 2), ("p.cedar#3", 4)]);
    assert_eq!(c.set.policy("named").expect("named").effect, Effect::Forbid);
}

#[test]
fn warnings_do_not_refuse_the_set() {
    let c = compile(&[(
        "w.cedar",
        "permit (principal is k8s::User, action == k8s::Action::\"list\", resource is k8s::NonResourceURL);",
    )]);
    match c {
        Ok(c) => assert!(!c.warnings.is_empty(), "expected a warning"),
        Err(e) => assert!(e.to_string().contains("w.cedar:1:"), "{e}"),
    }
}

#[test]
fn an_empty_source_is_an_empty_set() {
    let c = compile(&[("e.cedar", "// nothing yet\n")]).expect("valid");
    assert!(c.set.is_empty());
}

#[test]
fn the_subresource_guard_is_added_to_permits_only() {
    let c = compile(&[(
        "g.cedar",
        r#"@id("p") permit (principal, action, resource is k8s::Resource) when { resource.resource == "pods" };
@id("f") forbid (principal, action, resource is k8s::Resource) when { resource.resource == "pods" };
@id("s") permit (principal, action, resource is k8s::Resource) when { resource.resource == "pods" && !(resource has subresource) };
@id("n") permit (principal, action, resource is k8s::Resource) when { resource has name && resource.name == "resource" };"#,
    )])
    .expect("valid");
    let covers = |id: &str| c.set.policy(id).expect(id).covers_subresources;
    assert!(!covers("p"));
    assert!(covers("f"), "forbids are never narrowed");
    assert!(covers("s"), "it mentions subresource");
    assert!(covers("n"), "it names no resource");
}

#[test]
fn threshold_grant_scope_and_mask_annotations_are_checked() {
    let ok = compile(&[(
        "r.cedar",
        "@outcome(\"review\")\n@approvers(\"sre\")\n@threshold(\"2\")\n@grant_scope(\"namespace\")\npermit (principal, action, resource);\n@mask(\"deploy\")\npermit (principal, action, resource);\n",
    )]);
    assert!(ok.is_ok(), "{:?}", ok.err());
    for (text, key) in [
        ("@outcome(\"review\")\n@approvers(\"sre\")\n@threshold(\"0\")\npermit (principal, action, resource);\n", "@threshold"),
        ("@outcome(\"review\")\n@approvers(\"sre\")\n@threshold(\"many\")\npermit (principal, action, resource);\n", "@threshold"),
        ("@outcome(\"review\")\n@approvers(\"sre\")\n@grant_scope(\"cluster\")\npermit (principal, action, resource);\n", "@grant_scope"),
        ("@threshold(\"2\")\npermit (principal, action, resource);\n", "@threshold without @outcome"),
        ("@mask(\"Deploy Profile\")\npermit (principal, action, resource);\n", "@mask"),
        ("@mask(\"deploy\")\nforbid (principal, action, resource);\n", "@mask on a forbid"),
    ] {
        let p = problems(&[("a.cedar", text)]);
        assert!(p.len() == 1 && p[0].contains(key), "{text}: {p:?}");
    }
}
