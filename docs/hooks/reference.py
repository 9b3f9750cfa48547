"""MkDocs hook: the reference pages are generated at build time, so they cannot drift from the code.

A page may hold these markers, each replaced by generated Markdown:

* ``<!-- reference:usage -->``: the top-level ``policy-topics --help`` text;
* ``<!-- reference:commands -->``: every command with its usage, arguments, flags, defaults and help, built
  from the argparse parsers of ``policy_topics.cli.commands.PARSERS`` (and Hydra's own flags for ``train`` and
  ``evaluate``);
* ``<!-- reference:config -->``: every config group of ``conf/``, its options, and each option's keys with
  the value the file sets and the comment the file gives it;
* ``<!-- reference:topics -->``: the CAP topic codes and names of ``policy_topics.taxonomy``.
"""

from __future__ import annotations

import argparse
import re
import subprocess
from pathlib import Path
from typing import Any

import yaml

MARKERS = ("usage", "commands", "config", "topics")
HYDRA_COMMANDS = {
    "train": ("train", "Train, evaluate and log a model (a Hydra app: its arguments are config overrides)."),
    "evaluate": ("evaluate", "Score a logged model on a dataset and log an evaluation run (a Hydra app)."),
}
# The groups' order on the page: the train config's defaults first, then the rest.
GROUP_ORDER = ["paths", "data", "prep", "features", "model", "evaluation", "tracking", "experiment",
               "hparams_search", "hydra/launcher"]


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    if "<!-- reference:" not in markdown:
        return markdown
    root = Path(config["config_file_path"]).resolve().parent
    for marker in MARKERS:
        tag = f"<!-- reference:{marker} -->"
        if tag in markdown:
            markdown = markdown.replace(tag, GENERATORS[marker](root))
    return markdown


# --- commands ------------------------------------------------------------------------------------------


def _cell(text: Any) -> str:
    """Table-safe text: one line, pipes escaped."""
    return " ".join(str(text).split()).replace("|", "\\|")


def _code(text: Any) -> str:
    text = _cell(text)
    return f"`{text}`" if text else ""


def _argument_rows(parser: argparse.ArgumentParser) -> list[str]:
    rows = ["| argument | default | choices | what it does |", "|---|---|---|---|"]
    for action in parser._actions:
        if action.option_strings:
            metavar = "" if action.nargs == 0 else " " + (
                " ".join(action.metavar) if isinstance(action.metavar, tuple)
                else action.metavar or action.dest.upper())
            name = ", ".join(f"{flag}{metavar}" for flag in action.option_strings)
        else:
            name = action.metavar or action.dest
            if action.nargs in ("*", "?"):
                name = f"[{name} ...]" if action.nargs == "*" else f"[{name}]"
        if action.default in (None, argparse.SUPPRESS) or action.nargs == 0 or action.default == []:
            default = ""
        else:
            default = _code(action.default)
        choices = ", ".join(_code(c) for c in action.choices) if action.choices else ""
        help_text = "" if action.help in (None, argparse.SUPPRESS) else action.help
        rows.append(f"| {_code(name)} | {default} | {choices} | {_cell(help_text)} |")
    return rows


def _hydra_section(name: str, config_name: str, summary: str) -> list[str]:
    from hydra._internal.utils import get_args_parser

    lines = [f"## {name} {{#{name}}}", "", summary, "", "```text",
             f"policy-topics {name} [HYDRA FLAGS] [OVERRIDE ...]", "```", "",
             f"An `OVERRIDE` sets a key or picks an option of a config group of `conf/{config_name}.yaml`: "
             "`key=value`, `group=option`, `+new.key=value`, `~key` (see "
             f"[the configuration reference](configuration.md#entry-{config_name}) for every group and key). "
             "Overrides are checked against the composed config before anything runs: a misspelled key or "
             "option gets one line naming it.", "", "Hydra's own flags (from Hydra's parser):", ""]
    parser = get_args_parser()
    parser._actions = [a for a in parser._actions
                       if a.option_strings and a.dest not in ("shell_completion", "experimental_rerun")]
    lines += _argument_rows(parser)
    return [*lines, ""]


def commands_markdown(root: Path) -> str:
    from policy_topics.cli.commands import COMMANDS, PARSERS

    out: list[str] = []
    for name in COMMANDS:
        if name in HYDRA_COMMANDS:
            out += _hydra_section(name, *HYDRA_COMMANDS[name])
            continue
        parser = PARSERS[name]()
        usage = parser.format_usage().removeprefix("usage: ").strip()
        if name == "tracking-server":
            usage += " [-- MLFLOW SERVER OPTION ...]"
        out += [f"## {name} {{#{name}}}", "", parser.description or "", "", "```text", usage, "```", ""]
        out += _argument_rows(parser)
        out.append("")
    return "\n".join(out)


def usage_markdown(root: Path) -> str:
    from policy_topics.cli import USAGE

    return "```text\n" + USAGE.strip("\n") + "\n```"


# --- config --------------------------------------------------------------------------------------------


def _conf_files(conf: Path) -> list[Path]:
    """The YAML files of conf/: those git tracks when this is a checkout (a sweep's locally written
    preset is not part of the documented configuration), else all of them."""
    found = sorted(conf.rglob("*.yaml"))
    try:
        listed = subprocess.run(["git", "ls-files", "-z", "--", "."], cwd=conf, capture_output=True,
                                check=True, timeout=30).stdout.decode().split("\0")
    except (OSError, subprocess.SubprocessError):
        return found
    tracked = {(conf / name).resolve() for name in listed if name}
    return [p for p in found if p.resolve() in tracked] if tracked else found


def _split_comment(text: str) -> tuple[str, str]:
    """``value  # comment`` -> (value, comment), ignoring # inside quotes."""
    quote = None
    for i, ch in enumerate(text):
        if quote:
            if ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or text[i - 1] in " \t"):
            return text[:i].rstrip(), text[i + 1:].strip()
    return text.rstrip(), ""


KEY_LINE = re.compile(r"^(?P<indent> *)(?P<key>[^\s#:][^:]*?):(?:\s+(?P<rest>.*))?$")


def parse_yaml_keys(text: str) -> tuple[list[str], list[tuple[str, str, str, bool]]]:
    """The file's header comment lines, and (dotted key, value as written, comment, is_mapping) for each
    key outside the defaults list, in file order. Comments are the full-line comments just above a key
    plus the one at its end of line (continued on the next line when aligned with it)."""
    header: list[str] = []
    rows: list[tuple[str, str, str, bool]] = []
    stack: list[tuple[int, str]] = []
    pending: list[str] = []
    in_header = True
    skip_indent: int | None = None  # inside a block list or the defaults list
    last_comment_col: int | None = None
    for raw in text.splitlines():
        stripped = raw.strip()
        if not stripped:
            pending = []
            in_header = False
            last_comment_col = None
            continue
        if stripped.startswith("#"):
            comment = stripped[1:].strip()
            col = len(raw) - len(raw.lstrip())
            if in_header:
                if not comment.startswith("@package"):
                    header.append(stripped[1:].removeprefix(" ").rstrip())
            elif last_comment_col is not None and col == last_comment_col and rows:
                key, value, previous, mapping = rows[-1]
                rows[-1] = (key, value, f"{previous} {comment}".strip(), mapping)
            else:
                pending.append(comment)
            continue
        in_header = False
        indent = len(raw) - len(raw.lstrip())
        if skip_indent is not None:
            if indent > skip_indent or (indent == skip_indent and stripped.startswith("- ")):
                continue
            skip_indent = None
        if stripped.startswith("- "):
            continue
        match = KEY_LINE.match(raw)
        if not match:
            continue
        key = match["key"].strip()
        value, comment = _split_comment(match["rest"] or "")
        last_comment_col = raw.index("#", len(raw) - len(raw.lstrip()) + len(key)) \
            if comment else None
        while stack and stack[-1][0] >= indent:
            stack.pop()
        path = ".".join([k for _, k in stack] + [key])
        if not stack and key == "defaults":
            skip_indent = indent
            pending = []
            continue
        mapping = value == ""
        rows.append((path, value, " ".join([*pending, comment]).strip(), mapping))
        pending = []
        if value.startswith((">", "|")):
            skip_indent = indent  # the lines of a folded or literal block scalar
        if mapping:
            stack.append((indent, key))
    return header, rows


def _lookup(data: Any, dotted: str) -> Any:
    node = data
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            # keys that contain dots (sweep parameters such as model.estimator.C)
            return None
        node = node[part]
    return node


def _show(value: Any) -> str:
    if value is None:
        return "null"
    if value is True or value is False:
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    return str(value)


def _header_markdown(header: list[str]) -> list[str]:
    """A file's header comment: prose lines as a paragraph, lines indented further (example commands)
    as a code block."""
    out: list[str] = []
    prose: list[str] = []
    code: list[str] = []
    for line in [*header, ""]:
        if line.startswith("  ") and line.strip():
            if prose:
                out += [" ".join(prose), ""]
                prose = []
            code.append(line.strip() if not line.startswith("      ") else "    " + line.strip())
            continue
        if code:
            out += ["```text", *code, "```", ""]
            code = []
        if line.strip():
            prose.append(line.strip())
    if prose:
        out += [" ".join(prose), ""]
    return out[:-1] if out and out[-1] == "" else out


# Entries of a defaults list that only quieten Hydra's own logging, or place the file's own keys.
_PLUMBING = {"_self_", "override hydra/job_logging: none", "override hydra/hydra_logging: none"}


def _defaults(data: Any) -> list[str]:
    out = []
    for item in (data or {}).get("defaults", []) if isinstance(data, dict) else []:
        if isinstance(item, dict):
            out += [f"{k}: {_show(v)}" for k, v in item.items()]
        else:
            out.append(str(item))
    return [d for d in out if d not in _PLUMBING]


def _key_table(rows: list[tuple[str, str, str, bool]], data: Any, prefix: str) -> list[str]:
    if not rows:
        return []
    lines = ["| key | value | what it is |", "|---|---|---|"]
    for key, written, comment, mapping in rows:
        full = f"{prefix}.{key}" if prefix else key
        if mapping:
            node = _lookup(data, key)
            if isinstance(node, list):
                value = _code(_show(node))
            elif node == {} or node is None:
                value = _code("{}" if node == {} else "null")
            elif not comment:
                continue  # a heading of keys that says nothing itself: its keys are listed by full name
            else:
                value = "*(the keys below)*"
        elif written.startswith((">", "|")):
            value = _code(_show(_lookup(data, key)))
        else:
            value = _code(written)
        lines.append(f"| {_code(full)} | {value} | {_cell(comment)} |")
    return lines


def _file_section(path: Path, conf: Path, title: str, anchor: str, prefix: str, level: str) -> list[str]:
    text = path.read_text(encoding="utf-8")
    data = yaml.safe_load(text) or {}
    header, rows = parse_yaml_keys(text)
    if "# @package _global_" in text:
        prefix = ""
    out = [f"{level} {title} {{#{anchor}}}", ""]
    if header:
        out += [*_header_markdown(header), ""]
    out.append(f"File: `conf/{path.relative_to(conf).as_posix()}`"
               + (" (keys are global: it can set any key)" if "# @package _global_" in text and prefix == ""
                  and path.parent != conf else "") + ".")
    defaults = _defaults(data)
    if defaults:
        out += ["", "Defaults list (what it starts from, in order): " + ", ".join(_code(d) for d in defaults) + "."]
    out.append("")
    table = _key_table(rows, data, prefix)
    out += table if table else ["It sets no keys of its own."]
    return [*out, ""]


def config_markdown(root: Path) -> str:
    conf = root / "conf"
    files = _conf_files(conf)
    entries = sorted((p for p in files if p.parent == conf), key=lambda p: (p.stem != "train", p.stem))
    groups: dict[str, list[Path]] = {}
    for p in files:
        if p.parent != conf:
            groups.setdefault(p.parent.relative_to(conf).as_posix(), []).append(p)
    order = [g for g in GROUP_ORDER if g in groups] + sorted(g for g in groups if g not in GROUP_ORDER)

    entry_defaults: dict[str, dict[str, str]] = {}
    for p in entries:
        for item in (yaml.safe_load(p.read_text(encoding="utf-8")) or {}).get("defaults", []):
            if isinstance(item, dict):
                for k, v in item.items():
                    if not k.startswith("override "):
                        entry_defaults.setdefault(k, {})[p.stem] = _show(v)

    out = ["## Entry configs", "",
           "Each Hydra command composes one entry config: its defaults list picks an option of each group "
           "(change one with `group=option`), then its own keys follow.", ""]
    for p in entries:
        out += _file_section(p, conf, f"`{p.stem}.yaml` (`policy-topics {p.stem}`)", f"entry-{p.stem}", "", "###")
    out += ["## Config groups", "",
            "| group | options | default in train | default in evaluate |", "|---|---|---|---|"]
    for group in order:
        options = ", ".join(f"[`{p.stem}`](#{_anchor(group, p.stem)})" for p in groups[group])
        defaults = entry_defaults.get(group, {})
        out.append(f"| [`{group}`](#{_anchor(group)}) | {options} | {_code(defaults.get('train', '-'))} | "
                   f"{_code(defaults.get('evaluate', '-'))} |")
    out.append("")
    for group in order:
        package = group.replace("/", ".")
        out += [f"### `{group}` {{#{_anchor(group)}}}", "",
                f"Pick one with `{group}=OPTION`; its keys are `{package}.*`"
                + (" unless the file says it is global" if group in ("experiment", "hparams_search") else "")
                + "." + GROUP_NOTES.get(group, ""), ""]
        for p in groups[group]:
            out += _file_section(p, conf, f"`{group}={p.stem}`", _anchor(group, p.stem), package, "####")
    return "\n".join(out)


GROUP_NOTES = {
    "hydra/launcher": " Besides the option below, Hydra's own `basic` launcher (one trial after another, the "
                      "default) and the joblib launcher (`hydra/launcher=joblib`, which `hparams_search=optuna` "
                      "picks) come with the installed Hydra plugins; their keys are under `hydra.launcher.*` "
                      "(`policy-topics train -m hparams_search=optuna --cfg hydra` prints them).",
    "experiment": " A preset is a whole configuration under one name: `experiment=NAME`.",
}


def _anchor(group: str, option: str | None = None) -> str:
    name = "group-" + group.replace("/", "-").replace("_", "-")
    return name if option is None else f"{name}-{option.replace('_', '-')}"


# --- topics --------------------------------------------------------------------------------------------


def topics_markdown(root: Path) -> str:
    from policy_topics.taxonomy import CAP_MAJOR_TOPICS, US_MEDIA_TOPICS

    lines = ["| code | topic | codebook |", "|---:|---|---|"]
    lines += [f"| {c} | {n} | CAP major topic |" for c, n in CAP_MAJOR_TOPICS.items()]
    lines += [f"| {c} | {n} | US media codes |" for c, n in US_MEDIA_TOPICS.items()]
    return "\n".join(lines)


GENERATORS = {"usage": usage_markdown, "commands": commands_markdown, "config": config_markdown,
              "topics": topics_markdown}
