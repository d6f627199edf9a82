//! Operators, three-valued logic, macros, lists, appends, overrides and exceptions.

use fa_condition::{compile, compile_condition, Lookup, MapFields, Op, RuleSet, StepKind, Tri};
use fa_condition::{FieldSource, LoadError};

fn set(yaml: &str) -> RuleSet {
    let mut s = RuleSet::new();
    s.add_file("test.yaml", yaml, false).unwrap();
    s
}

fn eval(cond: &str, fields: &[(&str, &str)]) -> Tri {
    let s = set("- list: shells\n  items: [bash, sh]\n- macro: m\n  condition: proc.name = bash\n");
    compile_condition(&s, cond)
        .unwrap_or_else(|e| panic!("{cond}: {e}"))
        .evaluate(&MapFields::new(fields.iter().copied()))
        .value
}

#[test]
fn every_operator_true_and_false() {
    use Tri::{False as F, True as T};
    let cases: &[(&str, &str, &str, Tri)] = &[
        ("a.b = x", "a.b", "x", T),
        ("a.b = x", "a.b", "y", F),
        ("a.b == 1", "a.b", "1.0", T),
        ("a.b != x", "a.b", "y", T),
        ("a.b != x", "a.b", "x", F),
        ("a.b < 10", "a.b", "9", T),
        ("a.b < 10", "a.b", "10", F),
        ("a.b <= 10", "a.b", "10", T),
        ("a.b > 0x10", "a.b", "17", T),
        ("a.b >= 2", "a.b", "1", F),
        ("a.b contains ell", "a.b", "hello", T),
        ("a.b contains ELL", "a.b", "hello", F),
        ("a.b icontains ELL", "a.b", "hello", T),
        ("a.b bcontains 454c46", "a.b", "\u{7f}ELF", T),
        ("a.b bcontains 00", "a.b", "ELF", F),
        ("a.b bstartswith 45", "a.b", "ELF", T),
        ("a.b startswith /etc", "a.b", "/etc/passwd", T),
        ("a.b startswith /etc", "a.b", "/usr/etc", F),
        ("a.b endswith .sh", "a.b", "/tmp/x.sh", T),
        ("a.b endswith .sh", "a.b", "/tmp/x.py", F),
        ("a.b glob '/tmp/*.sh'", "a.b", "/tmp/a/b.sh", T),
        ("a.b glob '/tmp/?.sh'", "a.b", "/tmp/ab.sh", F),
        ("a.b iglob '*.SH'", "a.b", "x.sh", T),
        ("a.b regex 'ab+c'", "a.b", "abbc", T),
        ("a.b regex 'ab+c'", "a.b", "xabbcx", F),
        ("a.b in (x, 'y z')", "a.b", "y z", T),
        ("a.b in (x, y)", "a.b", "z", F),
        ("a.b in (shells)", "a.b", "sh", T),
        ("a.b in shells", "a.b", "bash", T),
        ("a.b intersects (x, y)", "a.b", "y", T),
        (
            "a.b pmatch (/etc, /usr/lib)",
            "a.b",
            "/etc/ssh/sshd_config",
            T,
        ),
        ("a.b pmatch (/etc)", "a.b", "/etcx", F),
        ("a.b exists", "a.b", "1", T),
        ("tolower(a.b) = bash", "a.b", "BaSh", T),
        ("toupper(a.b) = BASH", "a.b", "bash", T),
        ("b64(a.b) = hello", "a.b", "aGVsbG8=", T),
        ("basename(a.b) = sh", "a.b", "/bin/sh", T),
        ("len(a.b) > 3", "a.b", "abcd", T),
    ];
    for (cond, f, v, want) in cases {
        assert_eq!(eval(cond, &[(f, v)]), *want, "{cond} with {f}={v}");
    }
}

#[test]
fn field_to_field_and_arguments() {
    let f = [
        ("proc.name", "sh"),
        ("proc.pname", "sh"),
        ("proc.aname[2]", "sshd"),
    ];
    assert_eq!(eval("proc.name = val(proc.pname)", &f), Tri::True);
    assert_eq!(eval("proc.name != val(proc.pname)", &f), Tri::False);
    assert_eq!(eval("proc.aname[2] = sshd", &f), Tri::True);
    assert_eq!(eval("proc.aname[3] = sshd", &f), Tri::Unknown);
    assert_eq!(eval("proc.name = val(proc.exe)", &f), Tri::Unknown);
}

#[test]
fn kleene_logic_with_unknown_fields() {
    let f = [("proc.name", "bash")];
    // evt.type is absent: unknown, never false.
    assert_eq!(eval("evt.type = execve", &f), Tri::Unknown);
    assert_eq!(eval("not evt.type = execve", &f), Tri::Unknown);
    assert_eq!(
        eval("evt.type = execve and proc.name = zsh", &f),
        Tri::False
    );
    assert_eq!(
        eval("evt.type = execve and proc.name = bash", &f),
        Tri::Unknown
    );
    assert_eq!(eval("evt.type = execve or proc.name = bash", &f), Tri::True);
    assert_eq!(
        eval("evt.type = execve or proc.name = zsh", &f),
        Tri::Unknown
    );
    assert_eq!(eval("m and evt.type = x", &f), Tri::Unknown);
    assert_eq!(eval("not m", &f), Tri::False);
    // A field the alert prints without a value (`<NA>`): Falco's comparison is false.
    let none = MapFields(
        [("k8s.ns.name".to_string(), Vec::new())]
            .into_iter()
            .collect(),
    );
    let s = set("- macro: x\n  condition: a.b = 1\n");
    let c = compile_condition(&s, "k8s.ns.name = default").unwrap();
    assert_eq!(c.evaluate(&none).value, Tri::False);
    let c = compile_condition(&s, "k8s.ns.name exists").unwrap();
    assert_eq!(c.evaluate(&none).value, Tri::False);
}

/// Every value of a multi-valued field must be in the set for `in`; one is enough for
/// `intersects`.
#[test]
fn multi_valued_fields() {
    let f = MapFields::new([
        ("ka.req.pod.containers.privileged", "false"),
        ("ka.req.pod.containers.privileged", "true"),
    ]);
    let s = set("- macro: x\n  condition: a.b = 1\n");
    let t = |c: &str| compile_condition(&s, c).unwrap().evaluate(&f).value;
    assert_eq!(
        t("ka.req.pod.containers.privileged intersects (true)"),
        Tri::True
    );
    assert_eq!(t("ka.req.pod.containers.privileged in (true)"), Tri::False);
    assert_eq!(
        t("ka.req.pod.containers.privileged in (true, false)"),
        Tri::True
    );
    assert_eq!(t("ka.req.pod.containers.privileged = true"), Tri::True);
}

/// `proc.aname` without argument: any ancestor; the alert prints only some of them.
#[test]
fn partial_ancestry() {
    struct Anc;
    impl FieldSource for Anc {
        fn field(&self, name: &str, arg: Option<&str>) -> Lookup {
            match (name, arg) {
                ("proc.aname", None) => Lookup::Partial(vec!["bash".into(), "sshd".into()]),
                _ => Lookup::Unknown,
            }
        }
    }
    let s = set("- macro: x\n  condition: a.b = 1\n");
    let t = |c: &str| compile_condition(&s, c).unwrap().evaluate(&Anc).value;
    assert_eq!(t("proc.aname = sshd"), Tri::True);
    assert_eq!(t("proc.aname in (sshd, cron)"), Tri::True);
    assert_eq!(t("proc.aname = cron"), Tri::Unknown);
    assert_eq!(t("not proc.aname = sshd"), Tri::False);
}

const PRIV: &str = r#"
- list: falco_privileged_images
  items: [docker.io/falcosecurity/falco, quay.io/calico/node]
- list: more_images
  items: [falco_privileged_images, registry.k8s.io/kube-proxy]
- macro: container
  condition: (container.id != host)
- macro: falco_privileged_containers
  condition: (openshift_image or container.image.repository in (more_images))
- macro: openshift_image
  condition: (container.image.repository endswith /openshift3/logging-deployer)
- macro: user_privileged_containers
  condition: (never_true)
- macro: never_true
  condition: (evt.num=0)
- rule: Launch Privileged Container
  desc: a privileged container
  condition: >
    container_started and container
    and container.privileged=true
    and not falco_privileged_containers
    and not user_privileged_containers
  output: x
  priority: INFO
- macro: container_started
  condition: (evt.type = container or (evt.type in (execve, execveat) and proc.vpid=1))
"#;

#[test]
fn false_result_names_the_excluding_macro_and_list() {
    let c = compile(&set(PRIV)).unwrap();
    let rule = c.rule("Launch Privileged Container").unwrap();
    let alert = MapFields::new([
        ("container.id", "abc123"),
        ("container.privileged", "true"),
        ("container.image.repository", "quay.io/calico/node"),
    ]);
    let out = rule.condition.evaluate(&alert);
    assert_eq!(out.value, Tri::False);
    let first = &out.because[0];
    assert_eq!(
        (first.kind, first.name.as_str()),
        (StepKind::Macro, "falco_privileged_containers")
    );
    assert_eq!(first.field.as_deref(), Some("container.image.repository"));
    assert_eq!(first.value.as_deref(), Some("quay.io/calico/node"));
    // The list is the outermost one named in the condition, even when the item came from a
    // list it includes.
    assert!(out
        .because
        .iter()
        .any(|s| s.kind == StepKind::List && s.name == "more_images"));

    // Another image: only the event type is unknown, so the rule may fire.
    let other = MapFields::new([
        ("container.id", "abc123"),
        ("container.privileged", "true"),
        ("container.image.repository", "evil/miner"),
    ]);
    assert_eq!(rule.condition.evaluate(&other).value, Tri::Unknown);
    // Everything known and matching: it fires.
    let full = MapFields::new([
        ("evt.type", "container"),
        ("evt.num", "5"),
        ("container.id", "abc123"),
        ("container.privileged", "true"),
        ("container.image.repository", "evil/miner"),
    ]);
    assert_eq!(rule.condition.evaluate(&full).value, Tri::True);
}

#[test]
fn append_and_override_change_lists_macros_and_rules() {
    let mut s = set(PRIV);
    s.add_file(
        "user.yaml",
        r#"
- list: falco_privileged_images
  items: [evil/miner]
  override:
    items: append
- macro: user_privileged_containers
  condition: (container.image.repository = my/tool)
  override:
    condition: replace
- rule: Launch Privileged Container
  condition: and container.image.tag != debug
  append: true
"#,
        true,
    )
    .unwrap();
    let c = compile(&s).unwrap();
    let rule = c.rule("Launch Privileged Container").unwrap();
    assert_eq!(rule.user_files, vec!["user.yaml".to_string()]);
    let fields = |img: &'static str, tag: &'static str| {
        MapFields::new([
            ("container.id", "abc"),
            ("container.privileged", "true"),
            ("container.image.repository", img),
            ("container.image.tag", tag),
        ])
    };
    // Appended list item.
    let out = rule.condition.evaluate(&fields("evil/miner", "1"));
    assert_eq!(out.value, Tri::False);
    // Replaced macro.
    let out = rule.condition.evaluate(&fields("my/tool", "1"));
    assert_eq!(out.value, Tri::False);
    assert_eq!(out.because[0].name, "user_privileged_containers");
    // Appended condition.
    let out = rule.condition.evaluate(&fields("other/img", "debug"));
    assert_eq!(out.value, Tri::False);
    assert_eq!(out.because[0].kind, StepKind::Comparison);
    assert_eq!(out.because[0].field.as_deref(), Some("container.image.tag"));

    // Replacing a condition and disabling.
    let mut s2 = set(PRIV);
    s2.add_file(
        "u2.yaml",
        "- rule: Launch Privileged Container\n  condition: proc.name = x\n  enabled: false\n  override:\n    condition: replace\n    enabled: replace\n",
        true,
    )
    .unwrap();
    let c2 = compile(&s2).unwrap();
    let r2 = c2.rule("Launch Privileged Container").unwrap();
    assert!(!r2.enabled);
    assert_eq!(
        r2.condition
            .evaluate(&MapFields::new([("proc.name", "x")]))
            .value,
        Tri::True
    );
}

#[test]
fn exceptions_are_built_into_the_condition() {
    let yaml = r#"
- list: allowed_tools
  items: [kubectl, helm]
- rule: Shell
  condition: proc.name in (bash, kubectl, helm, curl)
  exceptions:
    - name: by_image
      fields: [container.image.repository, proc.name]
      comps: [=, in]
      values:
        - [my/ci, [bash]]
        - [my/ops, allowed_tools]
    - name: single
      fields: proc.pname
      comps: in
      values: [cron, systemd]
    - name: no_values
      fields: [proc.name]
  output: x
  priority: INFO
"#;
    let c = compile(&set(yaml)).unwrap();
    let r = c.rule("Shell").unwrap();
    let ev = |f: &[(&'static str, &'static str)]| {
        r.condition.evaluate(&MapFields::new(f.iter().copied()))
    };
    let out = ev(&[
        ("proc.name", "bash"),
        ("container.image.repository", "my/ci"),
        ("proc.pname", "x"),
    ]);
    assert_eq!(out.value, Tri::False);
    assert_eq!(out.because[0].kind, StepKind::Exception);
    assert_eq!(out.because[0].name, "by_image");
    let out = ev(&[
        ("proc.name", "helm"),
        ("container.image.repository", "my/ops"),
        ("proc.pname", "x"),
    ]);
    assert_eq!(out.value, Tri::False);
    assert!(out
        .because
        .iter()
        .any(|s| s.kind == StepKind::List && s.name == "allowed_tools"));
    let out = ev(&[("proc.name", "curl"), ("proc.pname", "cron")]);
    assert_eq!(out.value, Tri::False);
    assert_eq!(out.because[0].name, "single");
    // Not excepted: fires.
    let out = ev(&[
        ("proc.name", "curl"),
        ("proc.pname", "x"),
        ("container.image.repository", "my/ci"),
    ]);
    assert_eq!(out.value, Tri::True);

    // Appending values to an exception of the same name.
    let mut s = set(yaml);
    s.add_file(
        "u.yaml",
        "- rule: Shell\n  exceptions:\n    - name: single\n      values: [sshd]\n  override:\n    exceptions: append\n",
        true,
    )
    .unwrap();
    let c = compile(&s).unwrap();
    let r = c.rule("Shell").unwrap();
    let out = r.condition.evaluate(&MapFields::new([
        ("proc.name", "curl"),
        ("proc.pname", "sshd"),
    ]));
    assert_eq!(out.value, Tri::False);
}

#[test]
fn exception_conditions_on_their_own() {
    let c = compile(&set(PRIV)).unwrap();
    let e = c
        .exception(
            "fa_image",
            &["container.image.repository".into(), "proc.name".into()],
            &[Op::Eq, Op::Eq],
            &[vec!["my/img".into(), "sh".into()]],
        )
        .unwrap();
    let yes = MapFields::new([
        ("container.image.repository", "my/img"),
        ("proc.name", "sh"),
    ]);
    let no = MapFields::new([
        ("container.image.repository", "my/img"),
        ("proc.name", "nc"),
    ]);
    let unknown = MapFields::new([("container.image.repository", "my/img")]);
    assert_eq!(e.evaluate(&yes).value, Tri::True);
    assert_eq!(e.evaluate(&no).value, Tri::False);
    assert_eq!(e.evaluate(&unknown).value, Tri::Unknown);
}

#[test]
fn errors_name_file_item_and_position() {
    let mut s = RuleSet::new();
    s.add_file(
        "bad.yaml",
        "- macro: ok\n  condition: a.b = 1\n- rule: Broken\n  condition: proc.name = x and (fd.name = y\n  output: o\n  priority: INFO\n",
        true,
    )
    .unwrap();
    let e = compile(&s).unwrap_err();
    let text = e.to_string();
    assert!(text.contains("bad.yaml:3"), "{text}");
    assert!(text.contains("rule `Broken`"), "{text}");
    assert!(text.contains("column"), "{text}");
    assert!(matches!(e, LoadError::Syntax { .. }));

    let mut s = RuleSet::new();
    s.add_file(
        "u.yaml",
        "- rule: R\n  condition: undefined_macro and a.b = 1\n",
        true,
    )
    .unwrap();
    let text = compile(&s).unwrap_err().to_string();
    assert!(
        text.contains("undefined_macro") && text.contains("rule `R`"),
        "{text}"
    );

    let mut s = RuleSet::new();
    let e = s
        .add_file("u.yaml", "- list: l\n  items: [a]\n  append: true\n", true)
        .unwrap_err();
    assert!(e.to_string().contains("list `l`"), "{e}");

    let mut s = RuleSet::new();
    let e = s
        .add_file("y.yaml", "- rule: [unclosed\n", true)
        .unwrap_err();
    assert!(e.to_string().starts_with("y.yaml"), "{e}");

    let mut s = RuleSet::new();
    s.add_file(
        "r.yaml",
        "- macro: a\n  condition: b\n- macro: b\n  condition: a\n",
        true,
    )
    .unwrap();
    assert!(compile(&s).unwrap_err().to_string().contains("uses itself"));

    let mut s = RuleSet::new();
    s.add_file(
        "x.yaml",
        "- rule: R\n  condition: a.b = 1\n  exceptions:\n    - name: e\n      fields: [a.b, c.d]\n      values: [[1]]\n",
        true,
    )
    .unwrap();
    assert!(compile(&s)
        .unwrap_err()
        .to_string()
        .contains("exception `R/e`"));
}

/// False through a negated term that holds is the rule's own allow-list excluding the alert;
/// false through a positive term means the alert is not what the rule looks for.
#[test]
fn a_false_result_says_whether_an_allow_list_excluded_the_alert() {
    let s = set(concat!(
        "- list: known_tools\n  items: [kubectl]\n",
        "- macro: entrypoint\n  condition: proc.pname exists and not proc.pname in (sh, bash)\n",
        "- macro: user_known_ok\n  condition: proc.name in (known_tools)\n",
    ));
    let out = |c: &str, f: &[(&str, &str)]| {
        compile_condition(&s, c)
            .unwrap()
            .evaluate(&MapFields::new(f.iter().copied()))
    };
    let allowed = out(
        "proc.name exists and not user_known_ok",
        &[("proc.name", "kubectl")],
    );
    assert_eq!(allowed.value, Tri::False);
    assert!(allowed.excluded, "{allowed:?}");
    assert_eq!(allowed.because[0].name, "user_known_ok");
    // The positive requirement fails: not an exclusion.
    let other = out(
        "proc.name exists and entrypoint",
        &[("proc.name", "bash"), ("proc.pname", "sh")],
    );
    assert_eq!(other.value, Tri::False);
    assert!(!other.excluded, "{other:?}");
    // Two negations cancel: `not (not allow)` false is a positive requirement.
    let double = out("not (not user_known_ok)", &[("proc.name", "nginx")]);
    assert_eq!(double.value, Tri::False);
    assert!(!double.excluded);
}

#[test]
fn an_inline_negated_list_in_the_rule_is_an_allow_list() {
    let s = set("- macro: m\n  condition: proc.name exists\n");
    let out = compile_condition(&s, "m and not proc.pname in (runc, crio)")
        .unwrap()
        .evaluate(&MapFields::new([
            ("proc.name", "sh"),
            ("proc.pname", "crio"),
        ]));
    assert_eq!(out.value, Tri::False);
    assert!(out.excluded, "{out:?}");
    let tty = compile_condition(&s, "m and proc.tty != 0")
        .unwrap()
        .evaluate(&MapFields::new([("proc.name", "sh"), ("proc.tty", "0")]));
    assert_eq!(tty.value, Tri::False);
    assert!(!tty.excluded, "{tty:?}");
}

/// Upstream nests allow-lists in shared macros: `write_etc_common` holds `and not
/// ufw_writing_conf`. The inner negated macro is the exclusion; a negated comparison inside a
/// positive macro (`proc_name_exists`) stays scope, not an allow-list.
#[test]
fn a_negated_macro_inside_a_positive_macro_is_an_allow_list() {
    let s = set(concat!(
        "- macro: ufw_writing_conf\n  condition: (proc.name=ufw and fd.directory=/etc/ufw)\n",
        "- macro: proc_name_exists\n  condition: not proc.name in (\"<NA>\", \"\")\n",
        "- macro: write_etc_common\n  condition: fd.name startswith /etc and proc_name_exists and not ufw_writing_conf\n",
    ));
    let out = |f: &[(&str, &str)]| {
        compile_condition(&s, "write_etc_common")
            .unwrap()
            .evaluate(&MapFields::new(f.iter().copied()))
    };
    let ufw = out(&[
        ("proc.name", "ufw"),
        ("fd.name", "/etc/ufw/ufw.conf"),
        ("fd.directory", "/etc/ufw"),
    ]);
    assert_eq!(ufw.value, Tri::False);
    assert!(ufw.excluded, "{ufw:?}");
    assert_eq!(ufw.because[0].name, "ufw_writing_conf");
    let unnamed = out(&[("proc.name", "<NA>"), ("fd.name", "/etc/x")]);
    assert_eq!(unnamed.value, Tri::False);
    assert!(!unnamed.excluded, "{unnamed:?}");
}
