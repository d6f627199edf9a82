//! Every text shape Falco alerts arrive in, on lines as they were published. Where no published
//! line in a given envelope could be found, the envelope is built from its format's
//! specification around a published Falco line (said so at each test).

mod common;
use common::*;
use fa_ingest::{parse_plain_line, AlertReader, DeadLetterWriter, IngestError, NonAlert};
use fa_model::{Alert, Priority};
use serde_json::json;

fn one(line: &str) -> Alert {
    let (ok, bad) = read_all(line.as_bytes());
    assert!(bad.is_empty(), "{line}: {}", bad[0]);
    assert_eq!(ok.len(), 1, "{line}");
    ok.into_iter().next().unwrap_or_default()
}

fn time_text(a: &Alert) -> Option<&str> {
    a.extra.get("time_text").and_then(|v| v.as_str())
}

#[test]
fn syslog_rfc3164_with_and_without_pid() {
    // https://falco.org/blog/falco-on-rke-with-rancher/ (testdata/corpus/more-falco-blog-rke-rancher.log)
    let a = one("Feb 13 20:33:20 node-1 falco[19460]: 20:33:20.106330811: Error File below / or /root opened for writing (user=root user_loginuid=0 command=zsh parent=sshd file=/root/.zsh_history program=zsh container_id=host image=<NA>)");
    assert_eq!(a.hostname.as_deref(), Some("node-1"));
    assert_eq!(a.priority, Some(Priority::Error));
    assert_eq!(time_text(&a), Some("20:33:20.106330811"));
    assert_eq!(a.field("proc.cmdline").as_deref(), Some("zsh"));
    assert_eq!(
        a.message().map(|m| &m[..34]),
        Some("File below / or /root opened for w")
    );
    // https://github.com/kubernetes/kubernetes/issues/106238 (no pid in the tag)
    let a = one("Sep 16 06:23:48 ubuntu2004 falco: 06:23:48.830962378: Error File below /etc opened for writing (user=root user_loginuid=-1 command=sed -i $d /etc/passwd parent=sh pcmdline=sh -c echo hacker >> /etc/passwd; sed -i '$d' /etc/passwd; true file=/etc/passwdngFmAl program=sed gparent=<NA> ggparent=<NA> gggparent=<NA> container_id=b1339d5cc2de image=docker.io/library/httpd)");
    assert_eq!(a.hostname.as_deref(), Some("ubuntu2004"));
    assert_eq!(a.field("container.id").as_deref(), Some("b1339d5cc2de"));
    // https://github.com/falcosecurity/falco/issues/2903 (journalctl, zero-padded day, no fields group)
    let a = one("Nov 07 11:16:35 vagrant falco[4328]: 11:16:35.538028300: Warning user=vagrant process=touch pid=5410 parent=bash ppid=4492 command=touch existingfile file=/home/vagrant/existingfile\"");
    assert_eq!(a.hostname.as_deref(), Some("vagrant"));
    assert_eq!(a.field("user.name").as_deref(), Some("vagrant"));
}

#[test]
fn syslog_with_rfc3339_time_and_rfc5424() {
    // The Falco line is https://falco.org/blog/falco-on-rke-with-rancher/; the envelopes are
    // rsyslog's RFC 3339 template and RFC 5424 (section 6) around it.
    let falco = "20:33:20.106330811: Error File below / or /root opened for writing (user=root user_loginuid=0 command=zsh parent=sshd file=/root/.zsh_history program=zsh container_id=host image=<NA>)";
    for line in [
        format!("2024-02-13T20:33:20.106512+00:00 node-1 falco[19460]: {falco}"),
        format!("<14>1 2024-02-13T20:33:20.106Z node-1 falco 19460 - - {falco}"),
        format!("<14>1 2024-02-13T20:33:20.106Z node-1 falco 19460 - [meta sequenceId=\"1\" note=\"a \\] b\"] {falco}"),
        format!("<14>Feb 13 20:33:20 node-1 falco[19460]: {falco}"),
    ] {
        let a = one(&line);
        assert_eq!(a.hostname.as_deref(), Some("node-1"), "{line}");
        assert_eq!(a.priority, Some(Priority::Error), "{line}");
        assert_eq!(a.output.as_deref(), Some(falco), "{line}");
        if !line.starts_with("<14>Feb") {
            // The alert has only a time of day: the envelope's full time fills it in.
            assert_eq!(a.time.map(|t| t.timestamp()), Some(1707856400), "{line}");
        }
    }
}

#[test]
fn journalctl_json_records() {
    // `journalctl -o json` fields (systemd.journal-fields(7)) around the line of
    // https://github.com/falcosecurity/falco/issues/2903.
    let line = r#"{"__CURSOR":"s=1;i=2","__REALTIME_TIMESTAMP":"1699355795538028","_HOSTNAME":"vagrant","SYSLOG_IDENTIFIER":"falco","_PID":"4328","MESSAGE":"11:16:35.538028300: Warning user=vagrant process=touch pid=5410 parent=bash ppid=4492 command=touch existingfile file=/home/vagrant/existingfile"}"#;
    let a = one(line);
    assert_eq!(a.hostname.as_deref(), Some("vagrant"));
    assert_eq!(a.priority, Some(Priority::Warning));
    assert_eq!(
        a.time.map(|t| t.timestamp_micros()),
        Some(1_699_355_795_538_028)
    );
    // A JSON alert in MESSAGE keeps its own host and time; the journal fills in nothing more.
    let inner = r#"{\"hostname\":\"a2000de987ff\",\"output\":\"x\",\"priority\":\"Notice\",\"rule\":\"Terminal shell in container\",\"time\":\"2024-05-13T13:23:37.089890892Z\"}"#;
    let line =
        format!(r#"{{"MESSAGE":"{inner}","_HOSTNAME":"node-9","__REALTIME_TIMESTAMP":"1"}}"#);
    let a = one(&line);
    assert_eq!(a.rule.as_str(), "Terminal shell in container");
    assert_eq!(a.hostname.as_deref(), Some("a2000de987ff"));
    assert_eq!(a.time.map(|t| t.timestamp()), Some(1715606617));
}

#[test]
fn kubectl_timestamps_and_prefix() {
    // `kubectl logs --timestamps` / `--prefix` around published lines: the JSON alert of
    // https://github.com/falcosecurity/falco/issues/827 and the text alert of
    // https://kodekloud.com (notes.kodekloud.com .../Falco-Basics).
    let json_alert = r#"{"output":"03:24:53.463608468: Notice Repository files get updated (user=root command=exe /var/lib/docker/overlay2/53245bf6ebf49c675bf28b7fb8eb94eb285e7854c58d937bd8c033009c88fdc1/diff file=/etc/apt/sources.list container_id=host image=<NA>) k8s.ns=<NA> k8s.pod=<NA> container=host k8s.ns=<NA> k8s.pod=<NA> container=host","priority":"Notice","rule":"Update Package Repository","time":"2019-09-05T03:24:53.463608468Z", "output_fields": {"container.id":"host","fd.name":"/etc/apt/sources.list","user.name":"root"}}"#;
    let text_alert = "15:00:46.499981927: Notice A shell was spawned in a container with an attached terminal (user=root uid=0 loginuid=19048 container=9048a10aaf_7 (id=cbfbb5e6d496) shell=bash parent=func cmdline=bash terminal=34816 container_id=cbfbb5e6d496 image=nginx)";
    let a = one(&format!("2019-09-05T03:24:54.000000001Z {json_alert}"));
    assert_eq!(a.rule.as_str(), "Update Package Repository");
    // The alert's own time wins over the envelope's.
    assert_eq!(a.time.map(|t| t.timestamp()), Some(1567653893));
    let a = one(&format!("2024-05-07T15:00:46.500000000Z {text_alert}"));
    assert_eq!(a.priority, Some(Priority::Notice));
    assert_eq!(a.time.map(|t| t.timestamp()), Some(1715094046));
    let a = one(&format!("[pod/falco-57w7q/falco] {json_alert}"));
    assert_eq!(a.rule.as_str(), "Update Package Repository");
    let a = one(&format!("[pod/falco-57w7q/falco] {text_alert}"));
    assert_eq!(a.field("container.id").as_deref(), Some("cbfbb5e6d496"));
    let a = one(&format!(
        "[pod/falco-57w7q/falco] 2024-05-07T15:00:46.5Z {text_alert}"
    ));
    assert_eq!(a.priority, Some(Priority::Notice));
    // A JSON array is still an array.
    let (ok, bad) = read_all(b"[{\"rule\":\"a\",\"priority\":\"Notice\"}]\n");
    assert_eq!((ok.len(), bad.len()), (1, 0));
}

#[test]
fn container_runtime_wrappers() {
    // CRI: https://github.com/falcosecurity/charts/issues/466 shows
    // `2023-02-06T04:12:27.514498186Z stdout F {"hostname":"falco-t64nj"...`; the alert is the
    // text one of the same issue.
    let text = "Error File below /etc opened for writing (user=<NA> user_loginuid=-1 command=touch /etc/34 pid=1277 parent=bash pcmdline=bash file=/etc/34 program=touch gparent=<NA> ggparent=<NA> gggparent=<NA> container_id=f687a1640776 image=docker.io/library/nginx) k8s.ns=default k8s.pod=nginx-test2 container=f687a1640776";
    let json_alert = format!(
        r#"{{"hostname":"falco-t64nj","output":"04:12:27.514498186: {text}","priority":"Error","rule":"Write below etc","time":"2023-02-06T04:12:27.514498186Z"}}"#
    );
    let a = one(&format!(
        "2023-02-06T04:12:27.514498186Z stdout F {json_alert}"
    ));
    assert_eq!(a.rule.as_str(), "Write below etc");
    assert_eq!(a.hostname.as_deref(), Some("falco-t64nj"));
    let a = one(&format!(
        "2023-02-06T04:12:27.514498186Z stdout F 04:12:27.514498186: {text}"
    ));
    assert_eq!(a.priority, Some(Priority::Error));
    assert_eq!(a.time.map(|t| t.timestamp()), Some(1675656747));
    assert_eq!(a.field("container.id").as_deref(), Some("f687a1640776"));
    // Docker json-file (`{"log": line + "\n", "stream", "time"}`) holding either form.
    let docker = serde_json::to_string(&json!({
        "log": format!("{json_alert}\n"),
        "stream": "stdout",
        "time": "2023-02-06T04:12:27.6Z",
    }))
    .unwrap_or_default();
    let a = one(&docker);
    assert_eq!(a.rule.as_str(), "Write below etc");
    assert_eq!(a.time.map(|t| t.timestamp_subsec_nanos()), Some(514498186));
    let docker = serde_json::to_string(&json!({
        "log": format!("04:12:27.514498186: {text}\r\n"),
        "stream": "stdout",
        "time": "2023-02-06T04:12:27.6Z",
    }))
    .unwrap_or_default();
    let a = one(&docker);
    assert_eq!(a.priority, Some(Priority::Error));
    assert_eq!(a.time.map(|t| t.timestamp_subsec_millis()), Some(600));
    // A wrapper whose line is not an alert is one dead letter: the wrapper line itself.
    let bad = r#"{"log":"Events detected: 3\n","stream":"stderr","time":"2023-02-06T04:12:27.6Z"}"#;
    let (ok, rejected) = read_all(bad.as_bytes());
    assert!(ok.is_empty());
    assert_eq!(rejected[0].raw, bad.as_bytes());
    assert!(matches!(
        rejected[0].error,
        IngestError::NotAnAlert(NonAlert::Statistics)
    ));
}

#[test]
fn docker_compose_prefixes() {
    // https://github.com/falcosecurity/falco/blob/a200d17581dc08519b098b34927614455da64101/examples/bad-mount-cryptomining/README.md
    let a = one("falco_1            | 22:37:24.478583438: Informational Container with sensitive mount started (user=root command=runc:[1:CHILD] init docker123321-mysql (id=97587afcf89c) image=alpine:latest mounts=/etc:/mnt/etc::true:rprivate)");
    assert_eq!(a.priority, Some(Priority::Informational));
    // https://github.com/falcosecurity/falco/blob/732d53020217473494be857bd33c562c738377b9/examples/mitm-sh-installer/README.md
    let a = one("falco                  | 23:19:56.528652447: Warning Outbound connection on non-http(s) port by a process in a fbash session (command=curl -so ./botnet_client.py http://localhost:9090/botnet_client.py connection=127.0.0.1:43639->127.0.0.1:9090)");
    assert_eq!(a.priority, Some(Priority::Warning));
    assert_eq!(time_text(&a), Some("23:19:56.528652447"));
}

#[test]
fn falco_text_of_every_version() {
    // https://github.com/falcosecurity/falco/pull/200 (2017: a bare `falco:` tag, no time)
    let a = one("falco: Warning Shell spawned by untrusted binary (user=root shell=sh parent=linux-image-4.4 cmdline=sh -c /usr/sbin/update-initramfs -c -k 4.4.0-53-generic >&2)");
    assert_eq!(a.priority, Some(Priority::Warning));
    assert_eq!(
        a.message()
            .map(|m| m.starts_with("Shell spawned by untrusted binary")),
        Some(true)
    );
    // https://github.com/falcosecurity/falco/pull/1326 (priority, no time)
    let a = one("Warning Pod started with privileged container (user=system:serviceaccount:kube-system:daemon-set-controller pod=falco-42brw ns=monitoring images=docker.io/falcosecurity/falco:0.24.0)");
    assert_eq!(a.priority, Some(Priority::Warning));
    assert_eq!(
        a.message()
            .map(|m| m.starts_with("Pod started with privileged")),
        Some(true)
    );
    // https://github.com/falcosecurity/falco/pull/192 (a bare message: time and priority unknown)
    let a = one("Shell spawned by untrusted binary (user=root shell=sh parent=logrotate cmdline=sh -c invoke-rc.d rsyslog rotate > /dev/null logrotate_script /var/log/syslog)");
    assert_eq!((a.priority, a.time), (None, None));
    assert_eq!(a.field("proc.name").as_deref(), Some("sh"));
    assert!(a.rule.is_unknown());
    // ISO 8601 time (https://github.com/falcosecurity/falco/issues/745, the `output` of the
    // published JSON alert), ` | k=v` fields, priority names in any case, and the time of
    // day with a zone.
    let a = one("2019-07-30T19:35:28.038655549+0000: Error Rpm database opened for writing by a non-rpm program (command=python -c import yum; y=yum.YumBase(); y.doConfigSetup(init_plugins=False); print(y.conf.yumvar) file=/var/lib/rpm/__db.003 parent=python pcmdline=python -m amazon_linux_extras system_motd container_id=host image=<NA>)");
    assert_eq!(a.time.map(|t| t.timestamp()), Some(1564515328));
    for (line, p) in [
        ("10:20:05.408091526: warning Sensitive file opened for reading by non-trusted program | user=root command=cat /etc/shadow file=/etc/shadow", Priority::Warning),
        ("10:20:05.408091526+0000: INFO Sensitive file opened for reading by non-trusted program (user=root)", Priority::Informational),
        ("10:20:05.408091526Z: Informational Sensitive file opened (user=root)", Priority::Informational),
    ] {
        let a = one(line);
        assert_eq!(a.priority, Some(p), "{line}");
        assert_eq!(a.field("user.name").as_deref(), Some("root"), "{line}");
    }
    // https://github.com/falcosecurity/falco/issues/615: Falco's log line and an alert with no
    // newline between them; the alert is read.
    let a = one("Tue May 21 12:55:58 2019: Falco internal: syscall event drop. 1 system calls dropped in last second.12:55:58.461500387: Critical Falco internal: syscall event drop. 1 system calls dropped in last second.(ebpf_enabled=0 n_drops=1 n_drops_buffer=0 n_drops_bug=0 n_drops_pf=1 n_evts=13790)");
    assert_eq!(a.priority, Some(Priority::Critical));
    assert_eq!(a.field("n_drops").as_deref(), Some("1"));
}

#[test]
fn falco_log_and_statistics_lines_are_typed_dead_letters() {
    // https://github.com/falcosecurity/falco-website/pull/1201 (banner),
    // https://github.com/falcosecurity/falco/issues/1246 (ISO 8601 log time),
    // https://notes.kodekloud.com/docs/DevSecOps-Kubernetes-DevOps-Security/Kubernetes-Operations-and-Security/Falco-Basics (statistics)
    let input = "Fri Nov  3 15:48:07 2023: Falco version: 0.36.2 (x86_64)
Fri Nov  3 15:48:07 2023: Loading rules from file /etc/falco/falco_rules.yaml
2020-06-01T13:16:08+0000: Falco initialized with configuration file /etc/falco/falco.yaml
15:00:46.499981927: Notice A shell was spawned in a container with an attached terminal (user=root uid=0 loginuid=19048 container=9048a10aaf_7 (id=cbfbb5e6d496) shell=bash parent=func cmdline=bash terminal=34816 container_id=cbfbb5e6d496 image=nginx)
Events detected: 6
Rule counts by severity:
    INFO:    2
    NOTICE:  3

Triggered rules by rule name:
    Delete or rename shell history:    1
Syscall event drop monitoring:
    - event drop detected: 0 occurrences
";
    let (ok, bad) = read_all(input.as_bytes());
    assert_eq!(ok.len(), 1);
    let kinds: Vec<_> = bad
        .iter()
        .map(|r| match r.error {
            IngestError::NotAnAlert(k) => Some(k),
            _ => None,
        })
        .collect();
    use NonAlert::*;
    assert_eq!(
        kinds,
        [
            FalcoLog, FalcoLog, FalcoLog, Statistics, Statistics, Statistics, Statistics,
            Statistics, Statistics, Statistics, Statistics
        ]
        .map(Some)
    );
    assert!(bad[0]
        .to_string()
        .ends_with("a Falco log message (banner, start-up, warning), not an alert"));
    // The one blank line is neither an alert nor a dead letter: it is counted.
    let mut reader = AlertReader::new("t", input.as_bytes());
    assert_eq!(reader.by_ref().count(), 12);
    assert_eq!(reader.blank_lines(), 1);
    // Prose, a shell prompt or a comment holding `k=v` text is not an alert.
    for line in [
        "hello world",
        "# {\"user\":\"x\"} user=root",
        "$ env FOO=bar",
    ] {
        assert!(parse_plain_line(line).is_err(), "{line}");
    }
}

#[test]
fn dead_letters_are_the_input_bytes_exactly() {
    // A CRLF text line keeps its `\r`; junk after a value makes the whole line one record;
    // an indented bad value keeps its indentation and its `\r`.
    let lines: [&[u8]; 4] = [
        b"not an alert at all\r",
        br#"{"rule":"a","priority":"Notice"}}x"#,
        b"  {\"rule\":\"b\",\"priority\":\"Loud\"} \r",
        br#"{"rule":"c","priority":"Notice"} trailing"#,
    ];
    let mut input = Vec::new();
    for l in lines {
        input.extend_from_slice(l);
        input.extend_from_slice(b"\n\r\n");
    }
    let mut reader = AlertReader::new("t", &input[..]);
    let bad: Vec<_> = reader.by_ref().filter_map(Result::err).collect();
    let raws: Vec<&[u8]> = bad.iter().map(|r| &r.raw[..]).collect();
    assert_eq!(raws, lines);
    assert_eq!(bad.iter().map(|r| r.line).collect::<Vec<_>>(), [1, 3, 5, 7]);
    assert!(matches!(
        bad[1].error,
        IngestError::TrailingCharacters {
            found: '}',
            column: 33
        }
    ));
    // `\r\n` alone is a blank line (CRLF), counted, not a dead letter.
    assert_eq!(reader.blank_lines(), 4);
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let path = dir.path().join("dl.jsonl");
    let mut dl = DeadLetterWriter::new(&path);
    for r in &bad {
        assert!(dl.write(r).unwrap_or(false));
    }
    dl.flush().unwrap_or_else(|e| panic!("{e}"));
    let mut expected = Vec::new();
    for l in lines {
        expected.extend_from_slice(l);
        expected.push(b'\n');
    }
    assert_eq!(std::fs::read(&path).unwrap_or_default(), expected);
}

#[cfg(unix)]
#[test]
fn default_dead_letter_file_is_never_written_through_a_symlink() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let target = dir.path().join("precious");
    std::fs::write(&target, b"keep me\n").unwrap_or_else(|e| panic!("{e}"));
    let link = dir.path().join("falco-analyst.dead-letter.jsonl");
    std::os::unix::fs::symlink(&target, &link).unwrap_or_else(|e| panic!("{e}"));
    let (_, bad) = read_all(b"junk line\n");
    let mut dl = DeadLetterWriter::new_no_follow(&link);
    let err = dl.write(&bad[0]).expect_err("a symlink is refused");
    assert!(err.to_string().contains("symbolic link"), "{err}");
    assert_eq!(std::fs::read(&target).unwrap_or_default(), b"keep me\n");
    // A dangling link is refused too (O_EXCL does not follow it to create the target).
    let dangling = dir.path().join("dangling");
    std::os::unix::fs::symlink(dir.path().join("nowhere"), &dangling)
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(DeadLetterWriter::new_no_follow(&dangling)
        .write(&bad[0])
        .is_err());
    assert!(!dir.path().join("nowhere").exists());
    // A new file is created; an existing regular file is appended to.
    let fresh = dir.path().join("fresh.jsonl");
    for _ in 0..2 {
        let mut dl = DeadLetterWriter::new_no_follow(&fresh);
        assert!(dl.write(&bad[0]).unwrap_or(false));
        dl.flush().unwrap_or_else(|e| panic!("{e}"));
    }
    assert_eq!(
        std::fs::read(&fresh).unwrap_or_default(),
        b"junk line\njunk line\n"
    );
    // A path the user named explicitly is followed (e.g. /dev/stderr).
    let mut named = DeadLetterWriter::new(&link);
    assert!(named.write(&bad[0]).unwrap_or(false));
    named.flush().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        std::fs::read(&target).unwrap_or_default(),
        b"keep me\njunk line\n"
    );
}

/// Published in simonangel-fong/react2shell-eks's README: Falco's JSON alerts pasted as shell
/// comments (`# {...}`).
#[test]
fn json_alert_pasted_as_a_comment() {
    let text = fa_testdata::read_to_string(
        &fa_testdata::corpus_dir().join("atk-react2shell-eks-detect.log"),
    );
    let line = text.lines().next().expect("a line");
    assert!(line.starts_with("# {"));
    let a = one(line);
    assert_eq!(a.rule.as_str(), "Cluster Secret Accessed via K8s API");
    assert_eq!(a.priority, Some(Priority::Critical));
}

/// Published in elastisys/compliantkubernetes-apps#1100: a JSON alert whose values were emptied
/// by hand (`"time":""`, `"evt.time":,`) is no longer JSON, but its `output` text is intact and
/// is read as Falco text, with rule, priority and source from their own keys.
#[test]
fn broken_json_is_read_through_its_output_text() {
    let text = fa_testdata::read_to_string(
        &fa_testdata::corpus_dir().join("fp-elastisys-1100-host-setuid.log"),
    );
    let line = text.lines().next().expect("a line");
    assert!(
        serde_json::from_str::<serde_json::Value>(line).is_err(),
        "the line is not JSON"
    );
    let a = one(line);
    assert_eq!(a.rule.as_str(), "Non sudo setuid");
    assert_eq!(a.priority, Some(Priority::Notice));
    assert_eq!(a.output_fields["container.id"], json!("host"));
    // Without an `output` string there is nothing to read: still a dead letter.
    let (ok, bad) = read_all(b"{\"rule\":\"x\",\"time\":,}\n");
    assert!(ok.is_empty());
    assert_eq!(bad.len(), 1);
}

#[test]
fn junk_after_an_alert_is_not_salvaged() {
    let line = "{\"rule\":\"r\",\"output\":\"10:00:00.000000000: Notice x (user=root)\"}}x\n";
    let (ok, bad) = read_all(line.as_bytes());
    assert!(ok.is_empty(), "{ok:?}");
    assert_eq!(bad.len(), 1);
    assert_eq!(bad[0].raw, line.trim_end_matches('\n').as_bytes());
}
