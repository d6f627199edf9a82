//! The two prior-art reports in examples/prior-art carry the mistakes a report must never make.
//! check_document must flag every invented flag and the chsh misuse, and nothing valid.

use fa_validate::{check_document, Finding};

fn seed(name: &str) -> String {
    fa_testdata::read_to_string(&fa_testdata::prior_art_dir().join(name))
}

fn tokens(f: &[Finding]) -> Vec<&str> {
    f.iter().map(|f| f.token.as_str()).collect()
}

#[test]
fn seed_000_invented_docker_flags_and_chsh_misuse() {
    let f = check_document(&seed("000_511af362062d5f62.txt"));
    let t = tokens(&f);
    // docker run -it --no-pid --security-opt nonewuid my-image /bin/sh -c ip link del ... || true
    assert!(t.contains(&"--no-pid"), "{f:#?}");
    assert!(t.contains(&"nonewuid"), "{f:#?}");
    // sudo chsh root /bin/sh -c "ip link del calico_tmp_A || true"
    let chsh: Vec<&Finding> = f.iter().filter(|f| f.snippet.contains("chsh")).collect();
    assert!(chsh.iter().any(|f| f.token == "-c"), "{f:#?}");
    assert!(chsh.iter().any(|f| f.token == "/bin/sh"), "{f:#?}");
    // nothing else: `ip link show`, `ip link del`, prose spans are fine
    assert_eq!(t.len(), 4, "{f:#?}");
    for finding in &f {
        assert!(finding.line.is_some(), "{finding}");
        assert!(!finding.message.is_empty());
    }
}

#[test]
fn seed_001_invented_flags_and_bad_cpu_shares() {
    let f = check_document(&seed("001_be494ea42db2f8aa.txt"));
    let t = tokens(&f);
    assert!(t.contains(&"--securityOpt"), "{f:#?}");
    assert!(t.contains(&"--netcat-opt"), "{f:#?}");
    // -c is --cpu-shares and needs an integer
    let cpu = f
        .iter()
        .find(|f| f.message.contains("--cpu-shares"))
        .unwrap_or_else(|| panic!("no --cpu-shares finding in {f:#?}"));
    assert_eq!(cpu.token, "capAdd net_bind_service chroot");
    // `-p 8080:22/udp` is a valid port spec; prose spans (`nc -e`, `capAdd`) are not commands
    assert_eq!(t.len(), 3, "{f:#?}");
}

#[test]
fn findings_are_deterministic() {
    for name in ["000_511af362062d5f62.txt", "001_be494ea42db2f8aa.txt"] {
        let text = seed(name);
        assert_eq!(check_document(&text), check_document(&text));
    }
}
