"""Shell completion scripts for ``archc completion bash|zsh|fish``, read off the CLI's parser.

Built from the argparse parser itself, so a new command or option completes without an edit
here. Subcommands and options complete; a FILE completes as a path or as the name of a shipped
spec (``torchvision/resnet50``; the names are written into the script when it is made).
"""

from __future__ import annotations

import argparse
import shlex


def _commands(parser: argparse.ArgumentParser) -> dict[str, tuple[str, argparse.ArgumentParser]]:
    """Each subcommand: its one-line help and its parser."""
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    helps = {a.dest: a.help or "" for a in sub._choices_actions}
    return {name: (helps.get(name, ""), p) for name, p in sub.choices.items()}


def _takes_spec(parser: argparse.ArgumentParser) -> bool:
    """Whether the command reads a spec (a positional FILE or SPEC)."""
    return any(not a.option_strings and a.metavar in ("FILE", "SPEC") for a in parser._actions)


def _shipped() -> str:
    from archc.families import spec_names

    return " ".join(spec_names())


def _options(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    return [a for a in parser._actions if a.option_strings]


def _bash(parser: argparse.ArgumentParser) -> str:
    commands = _commands(parser)
    specs = " ".join(name for name, (_, p) in commands.items() if _takes_spec(p))
    cases = []
    for name, (_, p) in commands.items():
        words = " ".join(o for a in _options(p) for o in a.option_strings)
        cases.append(f"        {name}) opts={shlex.quote(words)} ;;")
        for a in _options(p):
            if a.choices:
                flags = "|".join(a.option_strings)
                choices = " ".join(str(c) for c in a.choices)
                cases.append(f"        {name}:{flags}) values={shlex.quote(choices)} ;;")
    lines = [
        "# archc completion for bash (and zsh through bashcompinit)",
        "_archc() {",
        '    local cur="${COMP_WORDS[COMP_CWORD]}" prev="${COMP_WORDS[COMP_CWORD-1]}"',
        '    local cmd="${COMP_WORDS[1]}" opts="" values="" names=""',
        f"    local shipped={shlex.quote(_shipped())}",
        '    if [ "$COMP_CWORD" -eq 1 ]; then',
        f'        COMPREPLY=($(compgen -W "{" ".join(commands)} --help --version" -- "$cur"))',
        "        return",
        "    fi",
        '    case "$cmd" in',
        *[c for c in cases if ":" not in c.split(")")[0]],
        "    esac",
        '    case " ' + specs + ' " in',
        '        *" $cmd "*) names="$shipped" ;;',
        "    esac",
        '    case "$cmd:$prev" in',
        *[c for c in cases if ":" in c.split(")")[0]],
        "    esac",
        '    if [ -n "$values" ]; then',
        '        COMPREPLY=($(compgen -W "$values" -- "$cur"))',
        '    elif [[ "$cur" == -* ]]; then',
        '        COMPREPLY=($(compgen -W "$opts" -- "$cur"))',
        "    else",
        '        COMPREPLY=($(compgen -f -- "$cur") $(compgen -W "$names" -- "$cur"))',
        "    fi",
        "}",
        "complete -o filenames -F _archc archc",
    ]
    return "\n".join(lines)


def _zsh(parser: argparse.ArgumentParser) -> str:
    return "autoload -U +X bashcompinit && bashcompinit\n" + _bash(parser)


def _fish(parser: argparse.ArgumentParser) -> str:
    lines = ["# archc completion for fish", "complete -c archc -f"]
    for name, (help, p) in _commands(parser).items():
        lines.append(f"complete -c archc -n __fish_use_subcommand -a {name} -d {shlex.quote(help)}")
        seen = f"'__fish_seen_subcommand_from {name}'"
        lines.append(f"complete -c archc -n {seen} -F")
        if _takes_spec(p):
            names = shlex.quote(_shipped())
            lines.append(f"complete -c archc -n {seen} -a {names} -d 'shipped spec'")
        for a in _options(p):
            flags = " ".join(
                f"-l {o[2:]}" if o.startswith("--") else f"-s {o[1:]}" for o in a.option_strings
            )
            choices = f" -x -a {shlex.quote(' '.join(map(str, a.choices)))}" if a.choices else ""
            lines.append(
                f"complete -c archc -n {seen} {flags}{choices} -d {shlex.quote(a.help or '')}"
            )
    return "\n".join(lines)


def script(shell: str, parser: argparse.ArgumentParser) -> str:
    """The completion script for ``shell`` (bash, zsh or fish)."""
    return {"bash": _bash, "zsh": _zsh, "fish": _fish}[shell](parser)
