#!/usr/bin/env python3
"""Generate kb/aliases.toml: every rule name and output text that ever existed upstream, mapped to
a knowledge-base entry.

Usage:
  scripts/gen_aliases.py --rules-repo PATH/TO/falcosecurity/rules \
      [--plugins-repo PATH/TO/falcosecurity/plugins] --kb kb > kb/aliases.toml

Both repositories may be bare (no work tree): files are read with `git show <blob>`. Every
version of every rules file in their history is read (falcosecurity/rules holds the history of
falco_rules.yaml back to 2016, when it lived in falcosecurity/falco; falcosecurity/plugins holds
the plugin rules after they moved there in 2022).

For each upstream rule name the entry is found, in order:
  1. a knowledge-base entry of that name or alias (case-insensitive);
  2. a rename listed in RENAMES below (each with the upstream commit that made it);
  3. a rule that appeared in the same commit that removed this one, with the same output prefix;
  4. a knowledge-base entry whose current output prefix equals this rule's last output prefix.
Names left over are printed to stderr: each needs an entry (kb/rules/removed_rules.toml) or a
line in RENAMES.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml

# Rules files whose history is read, per repository.
RULES_FILES = [
    "rules/falco_rules.yaml",
    "rules/falco-incubating_rules.yaml",
    "rules/falco-sandbox_rules.yaml",
    "rules/falco-deprecated_rules.yaml",
    "rules/k8s_audit_rules.yaml",
    "rules/application_rules.yaml",
    "archive/application_rules.yaml",
    "archive/falco-deprecated_rules.yaml",
    "rules/okta_rules.yaml",
    "rules/aws_cloudtrail_rules.yaml",
]
PLUGIN_FILES = [
    "plugins/k8saudit/rules/k8s_audit_rules.yaml",
    "plugins/k8saudit-gke/rules/k8s_audit_rules_gke.yaml",
    "plugins/cloudtrail/rules/aws_cloudtrail_rules.yaml",
    "plugins/gcpaudit/rules/gcp_auditlog_rules.yaml",
    "plugins/github/rules/github.yaml",
    "plugins/okta/rules/okta_rules.yaml",
]

# Renames that the heuristics cannot see (the old rule was removed in one commit and its
# successor added in another, or the output text changed together with the name).
# old name -> (current name, upstream evidence)
RENAMES: dict[str, tuple[str, str]] = {
    "db_program_spawn_process": ("DB program spawned process", "renamed in falcosecurity/rules@786a3fd954 (2016-05)"),
    "run_shell_in_container": ("Terminal shell in container", "renamed to 'Run shell in container' in @c6f8b13bd8, then replaced by 'Terminal shell in container' in #300 (2017-11)"),
    "Run shell in container": ("Terminal shell in container", "replaced by 'Terminal shell in container' in #300 (falcosecurity/rules@0c8beda72d, 2017-11)"),
    "File Open by Privileged Container": ("Launch Privileged Container", "replaced by the container-start rule in falcosecurity/rules@09efec561f (2017-05)"),
    "Sensitive Mount by Container": ("Launch Sensitive Mount Container", "replaced by the container-start rule in falcosecurity/rules@09efec561f (2017-05)"),
    "Schedule Cron Jobs in Container": ("Schedule Cron Jobs", "renamed in falcosecurity/rules@cb69fcf065 (#578, 2019-04)"),
    "Modify User Context": ("Modify Shell Configuration File", "renamed within #578 (2019-04)"),
    "Delete Bash History": ("Delete or rename shell history", "merged into 'Delete or rename shell history' (2023-08)"),
    "Unexpected outbound connection source": ("Unexpected inbound connection source", "renamed in falcosecurity/rules@3e2dcc2763 (#578, 2019-04)"),
    "Raw packet created in container": ("Packet socket created in container", "renamed (2019-12), later 'Packet socket created in container'"),
    "Raw packet was created in a container": ("Packet socket created in container", "renamed (2019-12), later 'Packet socket created in container'"),
    "Reverse shell": ("Redirect STDOUT/STDIN to Network Connection in Container", "renamed in 2020-04"),
    "Contact GCE Instance Metadata Service From Container": ("Contact cloud metadata service from container", "renamed (2019-12)"),
    "Linux Cgroup Container Escape Vulnerability (CVE-2022-0492)": ("Detect release_agent File Container Escapes", "renamed the same day (2022-05)"),
    "Linux Cgroup Container Escape Vulnerability (CVE-2022-4092)": ("Detect release_agent File Container Escapes", "renamed the same day (2022-05)"),
    "K8s Role/Clusterrole Created": ("K8s ClusterRole Created", "split into 'K8s Role Created' and 'K8s ClusterRole Created' in falcosecurity/plugins (2024-03); the output said 'K8s Cluster Role Created'"),
    "K8s Role/Clusterrole Deleted": ("K8s ClusterRole Deleted", "split into 'K8s Role Deleted' and 'K8s ClusterRole Deleted' in falcosecurity/plugins (2024-03); the output said 'K8s Cluster Role Deleted'"),
    "K8s Role/Clusterrolebinding Created": ("K8s ClusterRoleBinding Created", "split in falcosecurity/plugins (2024-03); the output said 'K8s Cluster Role Binding Created'"),
    "K8s Role/Clusterrolebinding Deleted": ("K8s ClusterRoleBinding Deleted", "split in falcosecurity/plugins (2024-03); the output said 'K8s Cluster Role Binding Deleted'"),
    "GCP IAM serviceAccount created": ("GCP IAM service account created", "renamed in falcosecurity/plugins@042f3f28bf (2023-11)"),
    "GCP IAM serviceAccount deleted": ("GCP IAM service account deleted", "renamed in falcosecurity/plugins@042f3f28bf (2023-11)"),
    "GCP IAM serviceAccount modified": ("GCP IAM service account modified", "renamed in falcosecurity/plugins@042f3f28bf (2023-11)"),
    "GCP IAM serviceAccount key created": ("GCP IAM service account key created", "renamed in falcosecurity/plugins@042f3f28bf (2023-11)"),
    "GCP IAM serviceAccount key deleted": ("GCP IAM service account key deleted", "renamed in falcosecurity/plugins@042f3f28bf (2023-11)"),
    "GCP IAM principle modified": ("GCP IAM policy modified", "renamed in falcosecurity/plugins@042f3f28bf (2023-11)"),
    "GCP KMS updated or deleted": ("GCP KMS updated", "split into 'GCP KMS updated' and 'GCP KMS deleted' in falcosecurity/plugins@042f3f28bf (2023-11)"),
    "GCP Pub/Sub Subscriber modified": ("GCP Pub/Sub subscription modified", "renamed in falcosecurity/plugins@042f3f28bf (2023-11)"),
    "GCP backendService deleted": ("GCP backend service deleted", "renamed in falcosecurity/plugins@042f3f28bf (2023-11)"),
    "GCP cloud function updated or deleted": ("GCP cloud function modified", "split into 'modified' and 'deleted' in falcosecurity/plugins@042f3f28bf (2023-11)"),
}


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "--git-dir", str(repo), *args],
        check=True,
        capture_output=True,
        text=True,
        errors="replace",
    ).stdout


def git_dir(path: Path) -> Path:
    return path / ".git" if (path / ".git").exists() else path


def output_prefix(output: str) -> str:
    """The stable leading text of an output: before the first field, without the opening of
    the field group."""
    text = " ".join(output.split())
    cut = text.find("%")
    if cut >= 0:
        text = text[:cut]
    # An open `(` or ` | ` before the first field starts the field group.
    group = max(text.rfind("("), text.rfind(" | "))
    if group >= 0 and ")" not in text[group:]:
        text = text[:group]
    # A trailing `key=` without its value.
    text = re.sub(r"[A-Za-z0-9_.\[\]]+=\s*$", "", text)
    return text.rstrip(" (|,:;=-")


def rules_of(text: str) -> list[tuple[str, str | None]]:
    try:
        docs = yaml.load(text, Loader=yaml.CSafeLoader)
    except yaml.YAMLError:
        return []
    out = []
    for item in docs or []:
        if isinstance(item, dict) and isinstance(item.get("rule"), str):
            output = item.get("output")
            # Append/override items change a rule, they do not define one.
            if item.get("append") or "override" in item:
                continue
            out.append((item["rule"].strip(), output if isinstance(output, str) else None))
    return out


def history(repo: Path, paths: list[str]):
    """Yield (commit, date, path, [(rule, output)]) oldest first for every version of `paths`."""
    log = git(repo, "log", "--format=%H %cs", "--reverse", "--", *paths)
    cache: dict[str, list] = {}
    for line in log.splitlines():
        commit, date = line.split()
        for path in paths:
            tree = git(repo, "ls-tree", commit, "--", path).split()
            if len(tree) < 3:
                continue
            blob = tree[2]
            if blob not in cache:
                cache[blob] = rules_of(git(repo, "cat-file", "blob", blob))
            yield commit, date, path, cache[blob]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rules-repo", required=True, type=Path)
    ap.add_argument("--plugins-repo", type=Path)
    ap.add_argument("--kb", required=True, type=Path)
    args = ap.parse_args()

    # Knowledge-base entries: name, aliases, output hint.
    kb: dict[str, str] = {}  # folded name or alias -> entry name
    kb_hint: dict[str, str] = {}  # folded output hint -> entry name
    for f in sorted((args.kb / "rules").glob("*.toml")):
        for r in tomllib.loads(f.read_text()).get("rule", []):
            for n in [r["name"], *r.get("aliases", [])]:
                kb.setdefault(n.lower(), r["name"])
            if r.get("output_hint"):
                kb_hint.setdefault(output_prefix(r["output_hint"]).lower(), r["name"])

    # name -> {"file", "first", "last", "outputs": {prefix: since}}
    seen: dict[str, dict] = {}
    # commit -> (names removed, names added), per repository pass
    events: list[tuple[str, set[str], set[str], dict]] = []
    sources = [(git_dir(args.rules_repo), RULES_FILES)]
    if args.plugins_repo:
        sources.append((git_dir(args.plugins_repo), PLUGIN_FILES))
    for repo, paths in sources:
        head = git(repo, "rev-parse", "--short", "HEAD").strip()
        for path in paths:
            prev: set[str] = set()
            prev_out: dict[str, str] = {}
            for commit, date, _, rules in history(repo, [path]):
                names = set()
                outs = {}
                for name, output in rules:
                    names.add(name)
                    version = f"{date} {repo.parent.name.replace('+', '/')}@{commit[:10]}"
                    s = seen.setdefault(
                        name, {"file": Path(path).name, "first": version, "outputs": {}}
                    )
                    s["last"] = version
                    if output:
                        p = output_prefix(output)
                        outs[name] = p
                        if len(p) >= 8:
                            s["outputs"].setdefault(p, version)
                removed, added = prev - names, names - prev
                if removed and added and prev:
                    events.append((commit, removed, added, {**prev_out, **outs}))
                prev, prev_out = names, outs
        print(f"# read {repo.parent.name} at {head}", file=sys.stderr)

    # Resolve each historical name to an entry.
    resolved: dict[str, tuple[str, str]] = {}
    for name in seen:
        if name.lower() in kb:
            resolved[name] = (kb[name.lower()], "same name")
        elif name in RENAMES:
            resolved[name] = RENAMES[name]
    for commit, removed, added, outs in events:
        for old in removed:
            if old in resolved:
                continue
            same = [n for n in added if outs.get(n) and outs.get(n) == outs.get(old)]
            if len(same) == 1 and same[0].lower() in kb:
                resolved[old] = (kb[same[0].lower()], f"renamed in {commit[:10]}, same output")
    for name, s in seen.items():
        if name in resolved:
            continue
        for p in reversed(list(s["outputs"])):
            if p.lower() in kb_hint:
                resolved[name] = (kb_hint[p.lower()], "same output text as the entry")
                break

    # An old output text that only ever belonged to one entry's rules identifies that entry.
    changed = True
    while changed:
        changed = False
        owner: dict[str, set[str]] = {}
        for n, (entry, _) in resolved.items():
            for p in seen[n]["outputs"]:
                owner.setdefault(p.lower(), set()).add(entry)
        for name, s in seen.items():
            if name in resolved:
                continue
            for p in s["outputs"]:
                entries = owner.get(p.lower(), set())
                if len(entries) == 1:
                    resolved[name] = (next(iter(entries)), f"same output text as an earlier name of the entry")
                    changed = True
                    break

    missing = [n for n in seen if n not in resolved]
    for n in sorted(missing):
        s = seen[n]
        print(f"UNRESOLVED\t{n}\t{s['file']}\t{s['first']}\t{s['last']}\t{list(s['outputs'])[-1:]}", file=sys.stderr)

    out = [
        "# Generated by scripts/gen_aliases.py from the history of falcosecurity/rules (rules/*.yaml,",
        "# back to 2016) and falcosecurity/plugins (plugins/*/rules/*.yaml). Do not edit by hand:",
        "# change the script (its RENAMES table) and run it again.",
        "#",
        "# One [[rule]] per rule name that ever existed upstream: `entry` is the knowledge-base entry",
        "# it maps to, `why` how the mapping was found, and `outputs` every distinct stable leading",
        "# text of its output (before the first field) with the first version that wrote it.",
        "",
    ]
    for name in sorted(seen, key=lambda n: (seen[n]["file"], n.lower())):
        if name not in resolved:
            continue
        entry, why = resolved[name]
        s = seen[name]
        out.append("[[rule]]")
        out.append(f"name = {toml_str(name)}")
        out.append(f"entry = {toml_str(entry)}")
        out.append(f"file = {toml_str(s['file'])}")
        out.append(f"why = {toml_str(why)}")
        out.append(f"first = {toml_str(s['first'])}")
        out.append(f"last = {toml_str(s['last'])}")
        out.append("outputs = [")
        for p, since in s["outputs"].items():
            out.append(f"  {{ since = {toml_str(since)}, prefix = {toml_str(p)} }},")
        out.append("]")
        out.append("")
    sys.stdout.write("\n".join(out))
    return 1 if missing else 0


def toml_str(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


if __name__ == "__main__":
    sys.exit(main())
