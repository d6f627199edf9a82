#!/usr/bin/env python3
"""Regenerate fa-validate's CLI flag tables (crates/validate/data/cli/*.txt) from the real tools.

Development-time only: the product never runs these tools, it embeds the generated tables with
include_str!. Run from the repository root with the tools installed:

    python3 crates/validate/tools/gen_cli_tables.py docker kubectl aws gcloud gh

Table format (read by crates/validate/src/cli.rs):
    # comment
    @word word [key=value ...]          a command node; attributes:
                                          args=MIN..MAX  positional count (MAX may be empty)
                                          stop=K         after K positionals the rest is opaque
                                                         (a container command, `ps` options...)
                                          negatable=yes  boolean --FLAG also accepts --no-FLAG
                                        (unix_manual.txt documents a few more markers)
    @word word -> word word             an alias of another node
    @word word *                        a known command whose flags are not tabled (not checked)
    [^]-s,--long TYPE [=validator]      a flag of the node above; ^ = inherited by sub-commands
TYPE is bool (no value) or a value type: string, list, int, uint, uint16, decimal, duration,
bytes, nargs (one or more values, aws lists), enum:a|b|c, or any other word (any value).
"""
import re
import subprocess
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "data" / "cli"


def run(cmd):
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    return p.stdout + p.stderr


# ---------------------------------------------------------------- docker
# Value forms that have a closed set are checked by named validators in src/docker.rs.
DOCKER_VALIDATORS = {
    "--security-opt": "security-opt",
    "--cap-add": "capability",
    "--cap-drop": "capability",
    "--user": "user",
    "--restart": "restart",
    "--network": "network",
    "--net": "network",
    "--publish": "port",
    "--tmpfs": "tmpfs",
    "--cgroupns": "cgroupns",
    "--pid": "pid-mode",
    "--ipc": "ipc-mode",
    "--uts": "uts-mode",
    "--userns": "userns-mode",
    "--ulimit": "ulimit",
    "--pull": "pull",
}
# Flags the CLI accepts but hides from --help (deprecated aliases still in wide use).
DOCKER_HIDDEN = {
    "run": ["--net network =network", "--net-alias list"],
    "create": ["--net network =network", "--net-alias list"],
}
DOCKER_VALIDATED_COMMANDS = {"run", "create", "update", "container run", "container create", "container update"}

FLAG_RE = re.compile(r"^\s{2,}(?:-(\w), )?\s*--([\w-]+)(?: ([\w\[\]=:.<>|-]+))?(?:\s{2,}|$)")


def docker_usage_args(usage):
    # "docker run [OPTIONS] IMAGE [COMMAND] [ARG...]" -> (min, max, stop)
    words = re.sub(r"\s*\|\s*", "|", usage).split()
    # drop "docker", the command words and [OPTIONS]
    i = 0
    while i < len(words) and re.fullmatch(r"[a-z][a-z-]*", words[i]):
        i += 1
    rest = [w for w in words[i:] if w not in ("[OPTIONS]",)]
    text = " ".join(rest)
    if not rest:
        return (0, 0, None)
    if "COMMAND" in text or "ps OPTIONS" in text:
        # positionals before the command are the only docker-parsed ones
        before = 0
        for w in rest:
            if "COMMAND" in w or w.startswith("[ps"):
                break
            before += 1
        required = before + (1 if "COMMAND" in rest else 0)
        return (required, None, before)
    minimum = sum(1 for w in rest if not w.startswith("["))
    unbounded = "..." in text
    maximum = None if unbounded else len([w for w in rest if not w.endswith("]") or w.startswith("[")])
    if not unbounded:
        maximum = len(rest)
    return (minimum, maximum, None)


def docker_flags(help_text, validated):
    out = []
    in_opts = False
    for line in help_text.splitlines():
        if re.match(r"^(Global )?Options:", line):
            in_opts = True
            continue
        if in_opts and line and not line.startswith(" "):
            in_opts = False
        if not in_opts:
            continue
        m = FLAG_RE.match(line)
        if not m:
            continue
        short, long, typ = m.groups()
        names = (f"-{short}," if short else "") + f"--{long}"
        typ = typ or "bool"
        v = DOCKER_VALIDATORS.get(f"--{long}") if validated else None
        out.append(f"{names} {typ}" + (f" ={v}" if v else ""))
    return out


def docker_commands(help_text):
    cmds = []
    section = None
    for line in help_text.splitlines():
        if re.match(r"^([A-Z][A-Za-z ]* )?Commands:$", line):
            section = line
            continue
        if section and not line.strip():
            section = None
            continue
        if section:
            m = re.match(r"^\s{2}([a-z][a-z0-9-]*)\*?\s", line)
            if m:
                cmds.append(m.group(1))
    return cmds


DOCKER_SEEN_TOP = set()


def gen_docker():
    version = run(["docker", "--version"]).strip()
    lines = [
        "# fa-validate CLI table: docker",
        f"# source: {version}; generated by crates/validate/tools/gen_cli_tables.py from",
        "# `docker --help` and `docker COMMAND [SUBCOMMAND] --help` (no daemon needed).",
        "# Flags marked =validator get their value checked (capabilities, security options...).",
    ]
    top = run(["docker", "--help"])
    lines.append("@docker args=1..")
    lines += docker_flags(top, False)
    seen = {}
    DOCKER_SEEN_TOP.update(docker_commands(top))
    for cmd in docker_commands(top):
        h = run(["docker", cmd, "--help"])
        sub = docker_commands(h)
        if sub:
            lines.append(f"@docker {cmd} args=1..")
            for s in sub:
                hh = run(["docker", cmd, s, "--help"])
                emit_docker_leaf(lines, f"{cmd} {s}", hh, seen)
        else:
            emit_docker_leaf(lines, cmd, h, seen)
    (OUT / "docker.txt").write_text("\n".join(lines) + "\n")


def emit_docker_leaf(lines, path, h, seen):
    if path in seen:
        return
    usage = next((l for l in h.splitlines() if l.startswith("Usage:")), "")
    usage = usage[len("Usage:"):].strip()
    mn, mx, stop = docker_usage_args(usage)
    attrs = f" args={mn}.." + (str(mx) if mx is not None else "")
    if stop is not None:
        attrs += f" stop={stop}"
    lines.append(f"@docker {path}{attrs}")
    lines += docker_flags(h, path in DOCKER_VALIDATED_COMMANDS)
    lines += DOCKER_HIDDEN.get(path.split()[-1], [])
    seen[path] = True
    hl = h.splitlines()
    if "Aliases:" in hl:
        for alias in hl[hl.index("Aliases:") + 1].split(","):
            words = alias.split()[1:]
            a = " ".join(words)
            if a and a != path and a not in seen and a not in DOCKER_SEEN_TOP:
                seen[a] = True
                lines.append(f"@docker {a} -> docker {path}")


# ---------------------------------------------------------------- kubectl
KFLAG_RE = re.compile(r"^\s{4}(?:-(\w), )?--([\w-]+)=(.*):$")


def kubectl_type(default):
    if default in ("false", "true"):
        return "bool"
    if default.startswith("["):
        return "list"
    if re.fullmatch(r"-?\d+", default):
        return "int"
    if re.fullmatch(r"(\d+(\.\d+)?(ns|us|ms|s|m|h))+", default):
        return "duration"
    return "string"


def kubectl_flags(text, inherited=False):
    out = []
    for line in text.splitlines():
        m = KFLAG_RE.match(line)
        if m:
            short, long, default = m.groups()
            names = (f"-{short}," if short else "") + f"--{long}"
            out.append(("^" if inherited else "") + f"{names} {kubectl_type(default)}")
    return out


def kubectl_subcommands(text):
    out = []
    grab = False
    for line in text.splitlines():
        if line.startswith("Available Commands:"):
            grab = True
            continue
        if grab:
            m = re.match(r"^\s{2}([a-z][a-z0-9-]*)\s", line)
            if m:
                out.append(m.group(1))
            elif not line.strip():
                grab = False
    return out


def kubectl_verbs(text):
    out = []
    for line in text.splitlines():
        m = re.match(r"^\s{2}([a-z][a-z0-9-]*)\s{2,}\S", line)
        if m:
            out.append(m.group(1))
    return out


def gen_kubectl():
    version = run(["kubectl", "version", "--client"]).splitlines()[0].strip()
    lines = [
        "# fa-validate CLI table: kubectl",
        f"# source: kubectl {version}; generated by crates/validate/tools/gen_cli_tables.py from",
        "# `kubectl options` (global, inherited) and `kubectl VERB [SUB] --help`.",
        "@kubectl args=1..",
    ]
    lines += kubectl_flags(run(["kubectl", "options"]), inherited=True)

    def walk(path):
        h = run(["kubectl", *path, "--help"])
        subs = kubectl_subcommands(h)
        usage = h.split("Usage:", 1)[-1].strip().splitlines()[0] if "Usage:" in h else ""
        if not subs:
            args = " args=0.."
        elif "FILENAME" in usage:
            # `kubectl apply -f FILE` runs the group itself; it takes no positionals.
            args = " args=0..0"
        else:
            args = " args=1.."
        lines.append("@kubectl " + " ".join(path) + args)
        lines.extend(kubectl_flags(h.split("The following options can be passed")[0]))
        if "Aliases:" in h:
            names = h.split("Aliases:", 1)[1].strip().splitlines()[0]
            for alias in (n.strip() for n in names.split(",")):
                if alias and alias != path[-1]:
                    lines.append("@kubectl " + " ".join(path[:-1] + [alias]) + " -> kubectl " + " ".join(path))
        for s in subs:
            walk(path + [s])

    for verb in kubectl_verbs(run(["kubectl", "--help"])):
        if verb in ("kubectl",):
            continue
        walk([verb])
    (OUT / "kubectl.txt").write_text("\n".join(lines) + "\n")


# ---------------------------------------------------------------- aws
AWS_FULL = [
    "iam", "sts", "cloudtrail", "s3api", "s3", "ec2", "lambda", "ecs", "eks", "organizations",
    "kms", "logs", "guardduty", "secretsmanager", "ssm", "ecr", "sns", "cloudwatch", "rds",
    "route53", "securityhub", "configservice", "accessanalyzer", "sso-admin", "identitystore",
]


def aws_type(arg):
    t = getattr(arg, "cli_type_name", "string")
    nargs = getattr(arg, "nargs", None)
    action = getattr(arg, "action", None) or getattr(arg, "_action", None)
    cls = type(arg).__name__
    if cls == "PositiveBooleanArgument":
        # --flag alone, or --flag Value=true (a structure)
        return "optnext"
    if arg.name == "version" or action in ("store_true", "store_false") or t == "boolean":
        return "bool"
    if nargs == "?":
        choices = getattr(arg, "choices", None) or ["input", "output"]
        return "optenum:" + "|".join(sorted(str(c) for c in choices))
    if nargs in ("+", "*") or t == "list":
        return "nargs"
    if t in ("integer", "long"):
        return "int"
    if t in ("float", "double"):
        return "decimal"
    choices = getattr(arg, "choices", None)
    model = getattr(arg, "argument_model", None)
    if not choices and model is not None and getattr(model, "enum", None):
        choices = model.enum
    if choices:
        return "enum:" + "|".join(sorted(str(c) for c in choices))
    return "string"


def aws_positionals(table):
    lo, hi = 0, 0
    for a in table.values():
        if not getattr(a, "positional_arg", False):
            continue
        n = getattr(a, "nargs", None)
        if isinstance(n, int):
            lo += n
            hi = None if hi is None else hi + n
        elif n == "?":
            hi = None if hi is None else hi + 1
        elif n in ("+", "*"):
            lo += 1 if n == "+" else 0
            hi = None
        else:
            lo += 1
            hi = None if hi is None else hi + 1
    return f"{lo}.." + ("" if hi is None else str(hi))


def gen_aws():
    from awscli.clidriver import create_clidriver
    import awscli

    d = create_clidriver()
    ct = d._get_command_table()
    lines = [
        "# fa-validate CLI table: aws",
        f"# source: aws-cli {awscli.__version__} (botocore command tables via awscli.clidriver);",
        "# generated by crates/validate/tools/gen_cli_tables.py. Services not listed in full are",
        "# known names whose operations are not checked (`*`). AWS CLI v2-only global flags are",
        "# added by hand below the v1 globals.",
        "@aws args=1..",
    ]
    for name, arg in sorted(d._get_argument_table().items()):
        lines.append(f"^--{name} {aws_type(arg)}")
    for extra in ("cli-binary-format enum:base64|raw-in-base64-out", "no-cli-pager bool",
                  "cli-auto-prompt bool", "no-cli-auto-prompt bool"):
        lines.append(f"^--{extra}")
    for svc in sorted(ct):
        if svc not in AWS_FULL:
            lines.append(f"@aws {svc} *")
            continue
        lines.append(f"@aws {svc} args=1..")
        svc_cmd = ct[svc]
        ops = svc_cmd._get_command_table() if hasattr(svc_cmd, "_get_command_table") else svc_cmd.subcommand_table
        for op in sorted(ops):
            cmd = ops[op]
            try:
                table = cmd.arg_table
            except Exception:
                lines.append(f"@aws {svc} {op} *")
                continue
            sub = getattr(cmd, "subcommand_table", None) or {}
            if sub:
                lines.append(f"@aws {svc} {op} *")
                continue
            lines.append(f"@aws {svc} {op} args={aws_positionals(table)}")
            for name, arg in sorted(table.items()):
                # Undocumented arguments (--next-token on paginated operations) are still accepted.
                if getattr(arg, "positional_arg", False):
                    continue
                lines.append(f"--{name} {aws_type(arg)}")
    (OUT / "aws.txt").write_text("\n".join(lines) + "\n")


# ---------------------------------------------------------------- gcloud
GCLOUD_FULL = {
    "iam", "projects", "logging", "compute", "storage", "sql", "functions", "container", "dns",
    "kms", "auth", "config", "organizations", "resource-manager", "services", "secrets", "run",
    "scc", "asset", "artifacts", "pubsub",
}


def gcloud_type(v):
    if v == "bool":
        return "bool"
    if isinstance(v, list):
        return "enum:" + "|".join(str(x) for x in v)
    return "string"


def gen_gcloud():
    import importlib.util
    import shutil

    root = Path(shutil.which("gcloud")).resolve().parent.parent
    spec = importlib.util.spec_from_file_location("c", root / "data/cli/gcloud_completions.py")
    m = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(m)
    tree = m.STATIC_COMPLETION_CLI_TREE
    version = (root / "VERSION").read_text().strip()
    lines = [
        "# fa-validate CLI table: gcloud",
        f"# source: Google Cloud SDK {version} (data/cli/gcloud_completions.py, the SDK's static",
        "# command tree); generated by crates/validate/tools/gen_cli_tables.py. Groups not listed",
        "# in full are known names whose commands are not checked (`*`). Boolean flags also",
        "# accept --no-FLAG.",
        "@gcloud args=1.. negatable=yes",
    ]
    for f, v in sorted(tree["flags"].items()):
        lines.append(f"^{f} {gcloud_type(v)}")
    lines.append("^-q,--quiet bool")
    lines.append("^-h bool")

    def walk(path, node):
        kids = node.get("commands", {})
        lines.append("@gcloud " + " ".join(path) + (" args=1.." if kids else " args=0.."))
        for f, v in sorted(node.get("flags", {}).items()):
            lines.append(f"{f} {gcloud_type(v)}")
        for k in sorted(kids):
            walk(path + [k], kids[k])

    for top in sorted(tree["commands"]):
        if top in GCLOUD_FULL:
            walk([top], tree["commands"][top])
        else:
            lines.append(f"@gcloud {top} *")
    (OUT / "gcloud.txt").write_text("\n".join(lines) + "\n")


# ---------------------------------------------------------------- gh
GH_FLAG_RE = re.compile(r"^\s{2,}(?:-(\w), )?--([\w-]+)(?: (\S+))?(?:\s{2,}|$)")
# Top-level commands newer than the tabled gh (added after 2.23); known names, not checked.
GH_NEWER = ["attestation", "cache", "copilot", "org", "preview", "project", "ruleset", "variable"]


def gh_sections(text):
    sections = {}
    cur = None
    for line in text.splitlines():
        if re.match(r"^[A-Z][A-Z ]+$", line):
            cur = line.strip()
            sections[cur] = []
        elif cur:
            sections[cur].append(line)
    return sections


def gh_flags(lines_, inherited=False):
    out = []
    for line in lines_:
        m = GH_FLAG_RE.match(line)
        if m:
            short, long, typ = m.groups()
            if long == "help":
                continue
            names = (f"-{short}," if short else "") + f"--{long}"
            out.append(f"{names} {typ or 'bool'}")
    return out


def gen_gh():
    version = run(["gh", "--version"]).splitlines()[0]
    lines = [
        "# fa-validate CLI table: gh",
        f"# source: {version}; generated by crates/validate/tools/gen_cli_tables.py from",
        "# `gh COMMAND [SUB] --help` (FLAGS and INHERITED FLAGS). Later top-level commands are",
        "# listed as known names (`*`).",
        "@gh args=1..",
        "^--help bool",
        "--version bool",
    ]

    def walk(path):
        h = run(["gh", *path, "--help"])
        secs = gh_sections(h)
        subs = []
        for name, body in secs.items():
            if name.endswith("COMMANDS"):
                for l in body:
                    mm = re.match(r"^\s{2}([a-z][a-z0-9-]*):", l)
                    if mm:
                        subs.append(mm.group(1))
        args = " args=1.." if subs else " args=0.."
        lines.append("@gh " + " ".join(path) + args)
        for alias_line in secs.get("ALIASES", []):
            for alias in alias_line.split(","):
                alias = alias.strip()
                words = alias.split()
                # "gh pr ls" style (full path) or a bare word
                last = words[-1] if words else ""
                if last and last != path[-1] and re.fullmatch(r"[a-z][a-z0-9-]*", last):
                    lines.append("@gh " + " ".join(path[:-1] + [last]) + " -> gh " + " ".join(path))
        lines.extend(gh_flags(secs.get("FLAGS", [])))
        lines.extend(gh_flags(secs.get("INHERITED FLAGS", [])))
        for s in subs:
            walk(path + [s])

    top = gh_sections(run(["gh", "--help"]))
    for name, body in top.items():
        if name.endswith("COMMANDS"):
            for l in body:
                mm = re.match(r"^\s{2}([a-z][a-z0-9-]*):", l)
                if mm:
                    walk([mm.group(1)])
    for n in GH_NEWER:
        lines.append(f"@gh {n} *")
    (OUT / "gh.txt").write_text("\n".join(lines) + "\n")



# ---------------------------------------------------------------- unix tools (GNU-style --help)
# Tool -> (help command, args spec). Tools with irregular syntax (ip, ps, find, lsof, nc, sudo,
# kill, jq, apt-get, apk, ausearch, crictl, falco, helm) are written by hand in
# data/cli/unix_manual.txt.
UNIX_GNU = {
    "ls": (["ls", "--help"], "0.."),
    "cat": (["cat", "--help"], "0.."),
    "grep": (["grep", "--help"], "0.."),
    "stat": (["stat", "--help"], "1.."),
    "sha256sum": (["sha256sum", "--help"], "0.."),
    "id": (["id", "--help"], "0..1"),
    "who": (["who", "--help"], "0..2"),
    "chmod": (["chmod", "--help"], "1.."),
    "chown": (["chown", "--help"], "1.."),
    "setfacl": (["setfacl", "--help"], "1.."),
    "getfacl": (["getfacl", "--help"], "1.."),
    "getent": (["getent", "--help"], "1.."),
    "last": (["last", "--help"], "0.."),
    "ss": (["ss", "--help"], "0.."),
    "curl": (["curl", "--help", "all"], "0.."),
    "ncat": (["ncat", "--help"], "0..2"),
    "usermod": (["usermod", "--help"], "1..1"),
    "chsh": (["chsh", "--help"], "0..1"),
    "journalctl": (["journalctl", "--help"], "0.."),
}
SPEC_TOKEN = re.compile(r"(-{1,2}[\w?][\w-]*)(\[=[^\]]+\]|=\S+)?")


def gnu_flags(text):
    out = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line.startswith("-") or line.startswith("--)") or line == "--":
            continue
        spec = re.split(r"\s{2,}|\t", line, maxsplit=1)[0]
        names, takes, optional = [], False, False
        rest = spec
        while rest:
            m = SPEC_TOKEN.match(rest)
            if not m:
                break
            names.append(m.group(1))
            if m.group(2):
                if m.group(2).startswith("["):
                    optional = True
                else:
                    takes = True
            rest = rest[m.end():].lstrip(", ")
            if rest and not rest.startswith("-"):
                # a value placeholder: <file>, FILE, port
                if re.match(r"(<[^>]*>|[A-Za-z][\w\[\]:.|-]*)", rest):
                    takes = True
                break
        names = [n for n in names if n not in ("--", "-")]
        if not names:
            continue
        typ = "string" if takes else ("opt" if optional else "bool")
        shorts = [n for n in names if re.fullmatch(r"-[\w?]", n)]
        longs = [n for n in names if n.startswith("--")]
        if not shorts and not longs:
            continue
        out.append(",".join(shorts + longs) + f" {typ}")
    return out


def systemctl_commands(text):
    cmds = []
    for line in text.splitlines():
        m = re.match(r"^  ([a-z][a-z-]+)(\s|$)", line)
        if m:
            cmds.append(m.group(1))
    return cmds


def gen_unix():
    lines = [
        "# fa-validate CLI table: common Unix tools (GNU-style --help)",
        "# source: Debian 12 (bookworm) packages on the build machine; generated by",
        "# crates/validate/tools/gen_cli_tables.py from each tool's --help. Irregular tools are",
        "# in unix_manual.txt.",
    ]
    for tool, (cmd, args) in UNIX_GNU.items():
        first = run([cmd[0], "--version"]).splitlines()
        lines.append(f"# {tool}: {first[0].strip() if first else ''}")
        lines.append(f"@{tool} args={args}")
        flags = gnu_flags(run(cmd))
        seen = set()
        for f in flags:
            if f not in seen:
                seen.add(f)
                lines.append(f)
    # systemctl: flags plus commands (each command takes any arguments)
    h = run(["systemctl", "--help"])
    lines.append("# systemctl: " + run(["systemctl", "--version"]).splitlines()[0])
    lines.append("@systemctl args=0..")
    lines.extend("^" + f for f in gnu_flags(h))
    for c in systemctl_commands(h):
        lines.append(f"@systemctl {c} args=0..")
    # runc: urfave/cli format
    lines.append("# runc: " + run(["runc", "--version"]).splitlines()[0])
    lines.append("@runc args=0..")
    top = run(["runc", "--help"])
    lines.extend("^" + f for f in urfave_flags(top.split("GLOBAL OPTIONS:")[-1]))
    for c in re.findall(r"^   ([a-z]+)(?:, \w+)?\s{2,}", top.split("COMMANDS:")[1].split("GLOBAL OPTIONS:")[0], re.M):
        if c == "help":
            continue
        hh = run(["runc", c, "--help"])
        lines.append(f"@runc {c} args=0..")
        lines.extend(urfave_flags(hh.split("OPTIONS:")[-1]) if "OPTIONS:" in hh else [])
    (OUT / "unix.txt").write_text("\n".join(lines) + "\n")


def urfave_flags(text):
    out = []
    for line in text.splitlines():
        m = re.match(r"^\s+(--?[\w-]+)(?:, (--?[\w-]+))?( value)?\s{2,}", line)
        if m:
            a, b, val = m.groups()
            names = [n for n in (a, b) if n]
            names.sort(key=lambda n: n.startswith("--"))
            if "--help" in names:
                continue
            out.append(",".join(names) + (" string" if val else " bool"))
    return out


if __name__ == "__main__":
    OUT.mkdir(parents=True, exist_ok=True)
    for what in sys.argv[1:] or ["docker", "kubectl", "aws", "gcloud", "gh", "unix"]:
        globals()[f"gen_{what}"]()
        print("generated", what)
