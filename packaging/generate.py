"""Generate unitsh's shell completions and the man pages from the declarations.

    python packaging/generate.py --out DIR     # flat files, for a look
    python packaging/generate.py --root STAGE  # the paths a package installs

Completions come from the shell's command registry (shell/commands.py),
unitmgr(1) and unitsh(1) from the two argparse parsers and that registry, and
unitmgr.unit(5) from the directive declarations (units/directive_table.py).
Nothing here is written by hand twice: adding a command or a directive
changes every output.
"""

from __future__ import annotations

import argparse
import datetime
import gzip
from pathlib import Path

from unitmgr.manager.cli import build_parser as build_manager_parser
from unitmgr.shell.cli import build_parser as build_shell_parser
from unitmgr.shell.commands import COMMANDS
from unitmgr.units.directives import all_directives

# Bash and zsh ask the manager for unit names through unitsh's own JSON output,
# so completion needs no Python beyond unitsh itself.
UNIT_NAMES_SHELL = (
    "unitsh --json -c 'list --all' 2>/dev/null"
    " | grep -o '\"name\": *\"[^\"]*\"' | sed 's/.*\"\\([^\"]*\\)\"$/\\1/'"
)


def _option_words(command) -> list[str]:
    return [flag for option in command.options for flag in option.flags]


def _global_options() -> str:
    """unitsh's own options, from its argparse parser."""
    flags = [flag for action in build_shell_parser()._actions for flag in action.option_strings]
    return " ".join(flag for flag in flags if flag not in ("-h", "--help"))


def bash_completion() -> str:
    words = " ".join(word for command in COMMANDS for word in command.words)
    global_options = _global_options()
    cases = []
    for command in COMMANDS:
        units = command.positional is not None and command.positional.complete == "units"
        options = " ".join(_option_words(command))
        pattern = "|".join(command.words)
        cases.append(f"        {pattern}) opts=\"{options}\"; units={1 if units else 0} ;;")
    return f"""# bash completion for unitsh, generated from its command registry
_unitsh_unit_names() {{
    {UNIT_NAMES_SHELL}
}}

_unitsh() {{
    local cur prev words cword
    _init_completion -n = || return
    local i command=""
    for ((i = 1; i < cword; i++)); do
        if [[ ${{words[i-1]}} == -c ]]; then command=${{words[i]%% *}}; fi
    done
    if [[ $prev == -c ]]; then
        COMPREPLY=($(compgen -W "{words}" -- "$cur"))
        return
    fi
    local opts="" units=0
    case "$command" in
{chr(10).join(cases)}
    esac
    if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "{global_options} $opts" -- "$cur"))
    elif ((units)); then
        COMPREPLY=($(compgen -W "$(_unitsh_unit_names)" -- "$cur"))
    else
        _known_hosts_real -- "$cur"
    fi
}}
complete -F _unitsh unitsh
"""


def zsh_completion() -> str:
    lines = []
    for command in COMMANDS:
        summary = command.summary.replace("'", "'\\''").replace(":", "\\:")
        for word in command.words:
            lines.append(f"    '{word}:{summary}'")
    return f"""#compdef unitsh
# zsh completion for unitsh, generated from its command registry
_unitsh_commands() {{
  local -a commands
  commands=(
{chr(10).join(lines)}
  )
  _describe 'unitsh command' commands
}}

_unitsh_units() {{
  local -a units
  units=(${{(f)"$({UNIT_NAMES_SHELL})"}})
  compadd -a units
}}

_arguments \\
  '-c[run one command, or several separated by ;]:command:_unitsh_commands' \\
  '--json[print machine-readable JSON]' \\
  '--endpoint[connect to this endpoint]:endpoint:' \\
  '--server-key[the manager public key (Z85)]:key:' \\
  '--accept-new-host-key[trust an unknown SSH host key]' \\
  '--authorize[authorise this client key on the remote manager]' \\
  '--timeout[seconds to wait for a reply]:seconds:' \\
  '*:host:_hosts'
"""


def fish_completion() -> str:
    lines = ["# fish completion for unitsh, generated from its command registry",
             "complete -c unitsh -f",
             "complete -c unitsh -l json -d 'print machine-readable JSON'",
             "complete -c unitsh -s c -x -d 'run one command' -a '"
             + " ".join(word for command in COMMANDS for word in command.words) + "'"]
    for command in COMMANDS:
        summary = command.summary.replace("'", "\\'")
        for word in command.words:
            lines.append(f"complete -c unitsh -n '__fish_seen_subcommand_from -c' -a {word} -d '{summary}'")
    return "\n".join(lines) + "\n"


def _roff_escape(text: str) -> str:
    text = text.replace("\\", "\\e").replace("-", "\\-")
    return "\n".join(("\\&" + line) if line.startswith((".", "'")) else line for line in text.split("\n"))


def _man_header(name: str, section: int, summary: str) -> list[str]:
    date = datetime.date.today().isoformat()
    return [f'.TH {name.upper()} {section} "{date}" "unitmgr" "unitmgr manual"',
            ".SH NAME", f"{_roff_escape(name)} \\- {_roff_escape(summary)}"]


def _man_options(parser: argparse.ArgumentParser) -> list[str]:
    lines = [".SH OPTIONS"]
    for action in parser._actions:
        if not action.option_strings or action.help == argparse.SUPPRESS:
            continue
        flags = ", ".join(action.option_strings)
        metavar = f" {action.metavar or action.dest.upper()}" if action.nargs != 0 else ""
        lines += [".TP", f"\\fB{_roff_escape(flags)}\\fR{_roff_escape(metavar)}", _roff_escape(action.help or "")]
    return lines


def man_unitmgr() -> str:
    parser = build_manager_parser()
    lines = _man_header("unitmgr", 1, "per-user service manager for systemd unit files")
    lines += [".SH SYNOPSIS", "\\fBunitmgr\\fR \\-\\-user [\\fIOPTIONS\\fR]", ".br",
              "\\fBunitmgr\\fR \\fICOMMAND\\fR ...", ".SH DESCRIPTION",
              _roff_escape(parser.description or "")]
    lines += _man_options(parser)
    lines.append(".SH COMMANDS")
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for choice in action._choices_actions:
                lines += [".TP", f"\\fB{_roff_escape(choice.dest)}\\fR", _roff_escape(choice.help or "")]
    lines += [".SH FILES", ".TP", "~/.config/unitmgr/units", "unit files (or \\-\\-units DIR)",
              ".TP", "~/.local/state/unitmgr", "logs and state", ".TP", "~/.config/unitmgr/keys",
              "CurveZMQ key pairs and authorized_keys",
              ".SH SEE ALSO", "unitsh(1), unitmgr.unit(5)"]
    return "\n".join(lines) + "\n"


def man_unitsh() -> str:
    parser = build_shell_parser()
    lines = _man_header("unitsh", 1, "the shell of the unitmgr service manager")
    lines += [".SH SYNOPSIS", "\\fBunitsh\\fR [\\fIHOST\\fR...] [\\-c \\fICMD\\fR] [\\fIOPTIONS\\fR]",
              ".SH DESCRIPTION", _roff_escape(parser.description or "")]
    lines += _man_options(parser)
    lines.append(".SH COMMANDS")
    for command in COMMANDS:
        usage = command.name
        if command.positional:
            usage += f" {command.positional.metavar}..."
        names = ", ".join(command.words)
        lines += [".TP", f"\\fB{_roff_escape(names)}\\fR", _roff_escape(f"{command.summary} Usage: {usage}")]
        for option in command.options:
            flags = ", ".join(option.flags) + (f" {option.metavar}" if option.metavar else "")
            lines += [".RS", ".TP", f"\\fB{_roff_escape(flags)}\\fR", _roff_escape(option.help), ".RE"]
    if parser.epilog:
        lines += [".SH EXIT STATUS", ".nf", _roff_escape(parser.epilog), ".fi"]
    lines += [".SH SEE ALSO", "unitmgr(1), unitmgr.unit(5), systemctl(1)"]
    return "\n".join(lines) + "\n"


def man_unit() -> str:
    lines = _man_header("unitmgr.unit", 5, "unit file directives understood by unitmgr")
    lines += [".SH DESCRIPTION",
              "unitmgr reads unit files in systemd's syntax. Each directive below is listed with its "
              "value type and whether unitmgr implements it; a directive that is not implemented is "
              "warned about once per unit and ignored."]
    section = None
    for directive in sorted(all_directives(), key=lambda d: (d.section, d.name)):
        if directive.section != section:
            section = directive.section
            lines.append(f".SH [{section}]")
        state = "implemented" if directive.implemented else f"not implemented: {directive.reason}"
        lines += [".TP", f"\\fB{directive.name}=\\fR ({_roff_escape(directive.kind)})",
                  _roff_escape(f"{directive.help}. {state}.")]
    lines += [".SH SEE ALSO", "unitmgr(1), systemd.unit(5), systemd.service(5)"]
    return "\n".join(lines) + "\n"


def outputs() -> dict[str, str]:
    """Relative install path -> content."""
    return {
        "usr/share/bash-completion/completions/unitsh": bash_completion(),
        "usr/share/zsh/vendor-completions/_unitsh": zsh_completion(),
        "usr/share/fish/vendor_completions.d/unitsh.fish": fish_completion(),
        "usr/share/man/man1/unitmgr.1": man_unitmgr(),
        "usr/share/man/man1/unitsh.1": man_unitsh(),
        "usr/share/man/man5/unitmgr.unit.5": man_unit(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--out", type=Path, help="write flat files into this directory")
    target.add_argument("--root", type=Path, help="write into a package staging root (man pages gzipped)")
    args = parser.parse_args()
    for relative, text in outputs().items():
        if args.out:
            path = args.out / Path(relative).name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            continue
        path = args.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        if "/man/" in relative:
            with gzip.open(f"{path}.gz", "wt") as f:
                f.write(text)
        else:
            path.write_text(text)


if __name__ == "__main__":
    main()
