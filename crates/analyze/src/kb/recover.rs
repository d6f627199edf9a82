//! Finding the knowledge-base entry of an alert written by any upstream Falco version: by an
//! old rule name, or (plain-text alerts carry no rule name) by the leading text of the output
//! as any version wrote it. The table is data, `kb/aliases.toml`, generated from the history of
//! falcosecurity/rules and falcosecurity/plugins by `scripts/gen_aliases.py`.

use super::KbError;
use serde::Deserialize;
use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;

const BUILTIN_ALIASES: &str = include_str!("../../../../kb/aliases.toml");

/// `kb/aliases.toml`.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct AliasFile {
    #[serde(default)]
    pub rule: Vec<AliasEntry>,
}

/// One rule name that existed upstream and the entry that covers it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AliasEntry {
    /// The name as that upstream version wrote it in `rule`.
    pub name: String,
    /// The knowledge-base entry (its current name).
    pub entry: String,
    /// The upstream rules file it was defined in.
    pub file: String,
    /// How the mapping was established (same name, a rename and its commit...).
    pub why: String,
    /// First and last upstream version (date and commit) that defined it.
    pub first: String,
    pub last: String,
    /// Every distinct stable leading text of its output, oldest first.
    #[serde(default)]
    pub outputs: Vec<OutputPrefix>,
}

/// The fixed start of one version's output text (before its first field).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputPrefix {
    /// The first version (date and commit) that wrote it.
    pub since: String,
    pub prefix: String,
}

/// Shortest leading text trusted to name a rule: shorter ones are too generic.
const MIN_PREFIX: usize = 8;

/// The built-in alias table, parsed once.
pub fn builtin_aliases() -> Result<&'static AliasFile, KbError> {
    static TABLE: OnceLock<Result<AliasFile, String>> = OnceLock::new();
    TABLE
        .get_or_init(|| toml::from_str(BUILTIN_ALIASES).map_err(|e| e.to_string()))
        .as_ref()
        .map_err(|message| KbError::Parse {
            file: "kb/aliases.toml".into(),
            message: message.clone(),
        })
}

/// Add every old name and every old output text of the alias table to the indexes, for the
/// entries the knowledge base has. A current name or `output_hint` keeps precedence: old ones
/// only fill gaps. `index` must already hold the entries' own names.
pub(super) fn add_aliases(
    table: &AliasFile,
    index: &mut HashMap<String, usize>,
    index_folded: &mut HashMap<String, usize>,
    hints: &mut Vec<(String, usize)>,
) {
    let mut known: HashSet<String> = hints.iter().map(|(h, _)| h.clone()).collect();
    for a in &table.rule {
        let Some(&i) = index.get(&a.entry) else {
            continue; // an entry a user directory removed or renamed
        };
        index.entry(a.name.clone()).or_insert(i);
        index_folded.entry(a.name.to_lowercase()).or_insert(i);
        for o in &a.outputs {
            let text = o.prefix.trim().to_lowercase();
            if text.len() >= MIN_PREFIX && known.insert(text.clone()) {
                hints.push((text, i));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kb::KnowledgeBase;
    use fa_model::{Alert, Priority};

    fn kb() -> KnowledgeBase {
        KnowledgeBase::builtin().unwrap_or_else(|e| panic!("built-in knowledge base: {e}"))
    }

    fn table() -> &'static AliasFile {
        builtin_aliases().unwrap_or_else(|e| panic!("{e}"))
    }

    /// Entries that ever wrote exactly this output text (a few texts were shared upstream,
    /// e.g. by a rule and its deprecated twin): recovering any of them is right.
    fn writers(prefix: &str) -> Vec<&'static str> {
        table()
            .rule
            .iter()
            .filter(|a| {
                a.outputs
                    .iter()
                    .any(|o| o.prefix.eq_ignore_ascii_case(prefix))
            })
            .map(|a| a.entry.as_str())
            .collect()
    }

    #[test]
    fn every_alias_names_an_entry_and_every_old_name_finds_it() {
        let kb = kb();
        assert!(table().rule.len() > 300, "{}", table().rule.len());
        for a in &table().rule {
            let by_entry = kb.lookup_str(&a.entry);
            assert!(by_entry.is_some(), "{}: no entry `{}`", a.name, a.entry);
            let by_name = kb.lookup_str(&a.name).map(|r| r.entry.name.as_str());
            assert_eq!(
                by_name,
                by_entry.map(|r| r.entry.name.as_str()),
                "{}",
                a.name
            );
        }
    }

    #[test]
    fn every_versions_output_text_recovers_its_entry() {
        let kb = kb();
        let mut checked = 0;
        for a in &table().rule {
            for o in &a.outputs {
                if o.prefix.trim().len() < MIN_PREFIX {
                    continue;
                }
                let message = format!("{} (user=root command=sh -c id)", o.prefix);
                let got = kb.recover_rule(&message).map(|r| r.entry.name.as_str());
                let ok = got.is_some_and(|g| g == a.entry || writers(&o.prefix).contains(&g));
                assert!(
                    ok,
                    "{} ({}): `{}` recovered {got:?}",
                    a.name, o.since, o.prefix
                );
                checked += 1;
            }
        }
        assert!(checked > 300, "{checked}");
    }

    /// Plain-text alerts as published, with the text ingest leaves in `output` (envelopes such
    /// as `falco_1 |` removed; a line pasted without time keeps only its message).
    #[test]
    fn real_old_lines_recover_the_right_entry() {
        let kb = kb();
        let cases = [
            // https://github.com/blackberry/Falco-bypasses/blob/main/README.md
            ("11:46:23.518207080: Notice A shell was spawned in a container with an attached terminal (user=root user_loginuid=-1 k8s.ns=prd k8s.pod=r00t1 container=3af88f406740 shell=bash parent=<NA> cmdline=bash terminal=34816 container_id=3af88f406740 image=alpine) k8s.ns=prd k8s.pod=r00t1 container=3af88f406740", "Terminal shell in container"),
            // https://github.com/falcosecurity/falco/blob/732d53020217473494be857bd33c562c738377b9/examples/mitm-sh-installer/README.md (2017, rule removed upstream)
            ("23:19:56.528652447: Warning Outbound connection on non-http(s) port by a process in a fbash session (command=curl -so ./botnet_client.py http://localhost:9090/botnet_client.py connection=127.0.0.1:43639->127.0.0.1:9090)", "Installer bash non https connection"),
            // https://github.com/falcosecurity/falco/pull/221 ('Run shell in container', replaced in 2017)
            ("Shell spawned in a container other than entrypoint (user=<NA> k8s_rabbitmq.af7a0ada_rabbitmq-1_data_XXX (id=YYY) shell=sh parent=erl_child_setup cmdline=sh -c exec /bin/sh -s unix:cmd)", "Terminal shell in container"),
            // https://github.com/falcosecurity/falco/blob/a200d17581dc08519b098b34927614455da64101/examples/bad-mount-cryptomining/README.md
            ("22:37:24.478583438: Informational Container with sensitive mount started (user=root command=runc:[1:CHILD] init docker123321-mysql (id=97587afcf89c) image=alpine:latest mounts=/etc:/mnt/etc::true:rprivate)", "Launch Sensitive Mount Container"),
            // https://github.com/falcosecurity/falco/issues/534
            ("02:06:15.738740734: Notice Database-related program spawned process other than itself (user=root program=ls parent=mysqld container_id=987194d6c89a image=sysdig/falco-event-generator) k8s.ns=default k8s.pod=falco-event-generator-deployment-645444689b-8fnxr container=987194d6c89a", "DB program spawned process"),
            // https://github.com/apachecn/apachecn-devops-zh/blob/master/docs/learn-k8s-sec/12.md (old output wording)
            ("19:46:37.939287649: Critical Outbound connection to IP/Port flagged by cryptoioc.ch (command=minerd2 -a cryptonight -o stratum+tcp://monero.crypto-pool.fr:3333 -u 49TfoHGd6apXxNQTSHrMBq891vH6JiHmZHbz5Vx36nLRbz6WgcJunTtgcxno G6snKFeGhAJB5LjyAEnvhBgCs5MtEgML3LU -p x port=37110 ip=100.97.244.198 container=k8s.ns=insecure-nginx k8s.pod=insecure-nginx-8455b6d49c-z6wb9 container=07dce07d5100 image=kaizheh/victim)", "Detect outbound connections to common miner pool ports"),
            // https://github.com/falcosecurity/falco/pull/1326 (pasted without time)
            ("Pod started with privileged container (user=system:serviceaccount:kube-system:daemon-set-controller pod=falco-42brw ns=monitoring images=docker.io/falcosecurity/falco:0.24.0)", "Create Privileged Pod"),
            // https://github.com/falcosecurity/falco/issues/738 (a bare message)
            ("File below / or /root opened for writing (user=root command=runc:[1:CHILD] init parent=<NA> file=/exec.fifo program=runc:[1:CHILD]) k8s.ns=<NA> k8s.pod=<NA> container=host", "Write below root"),
        ];
        for (output, entry) in cases {
            let alert = Alert {
                output: Some(output.to_string()),
                ..Alert::default()
            };
            let got = kb.rule_for(&alert).map(|r| r.entry.name.as_str());
            assert_eq!(got, Some(entry), "{output}");
        }
        // An old rule name in a JSON alert finds today's entry.
        let alert = Alert {
            rule: "Run shell in container".into(),
            priority: Some(Priority::Warning),
            ..Alert::default()
        };
        assert_eq!(
            kb.rule_for(&alert).map(|r| r.entry.name.as_str()),
            Some("Terminal shell in container")
        );
    }
}
