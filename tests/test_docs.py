"""The docs against the code: what README.md, BUILD.md and hmvae_tf/music/README.md name exists.

After many sessions the docs drifted where nothing checked them: modules missing from the
layouts, a flag renamed in the code but not in a command line users copy. These checks read
the docs' text and the package's files only (no TensorFlow), so they cost milliseconds.
"""
from __future__ import annotations

import os
import re

import pytest

from hmvae_tf import cli

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COMMAND_DOCS = ("README.md", "BUILD.md")

# `hmvae <command>` (or `hmvae sample|interpolate`) and what follows it up to the end of the
# code span, a shell comment or the next command of a shell line.
HMVAE_LINE = re.compile(r"\bhmvae ((?:[a-z]+\|)*[a-z]+)\b([^`#;\n]*)")
FLAG = re.compile(r"(?<![\w-])(--?[a-z][\w-]*)")
QUOTED = re.compile(r"\"[^\"]*\"|'[^']*'")  # a value such as --train_flags="--seed=1"


def read(name: str) -> str:
    with open(os.path.join(ROOT, name), encoding="utf-8") as f:
        return f.read()


def command_flags(command: str) -> set[str]:
    """Every option string `hmvae <command>` accepts."""
    parser = cli.build_parser([command])
    sub = next(a for a in parser._actions if a.dest == "command").choices[command]
    return set(sub._option_string_actions)


def doc_command_lines(text: str) -> list[tuple[str, str, str]]:
    """(command, flags text, the line) of every `hmvae` command line in a doc, with a shell
    line's `\\` continuations joined."""
    found = []
    for line in text.replace("\\\n", " ").splitlines():
        for match in HMVAE_LINE.finditer(line):
            for command in match.group(1).split("|"):
                found.append((command, QUOTED.sub("", match.group(2)), line.strip()))
    return found


def test_doc_command_lines_are_found():
    """The extraction itself: the Usage block's lines, continuations and alternatives."""
    lines = doc_command_lines(read("README.md"))
    assert ("train" in {c for c, _, _ in lines}) and len(lines) > 20
    train = [flags for c, flags, _ in lines if c == "train" and "--strategy" in flags]
    assert train and "--dtype_policy" in train[0]  # joined across the `\` continuation
    assert doc_command_lines("`hmvae sample|interpolate --server=h:1`") == [
        ("sample", " --server=h:1", "`hmvae sample|interpolate --server=h:1`"),
        ("interpolate", " --server=h:1", "`hmvae sample|interpolate --server=h:1`")]


@pytest.mark.parametrize("doc", COMMAND_DOCS)
def test_every_hmvae_command_and_flag_in_the_docs_exists(doc):
    """A command or flag the docs show but the parser lacks is an error users would meet
    when they copy the line."""
    problems = []
    for command, flags, line in doc_command_lines(read(doc)):
        if command not in cli.COMMANDS:
            problems.append(f"no command {command!r}: {line}")
            continue
        known = command_flags(command)
        problems += [f"hmvae {command} has no {flag}: {line}"
                     for flag in FLAG.findall(flags) if flag not in known]
    assert not problems, f"{doc}:\n" + "\n".join(problems)


def modules(package_dir: str) -> set[str]:
    folder = os.path.join(ROOT, package_dir)
    return {f for f in os.listdir(folder) if f.endswith(".py") and f != "__init__.py"}


def test_every_module_is_in_its_layout():
    """README's Layout names each module of hmvae_tf/, hmvae_tf/music/README.md each of
    hmvae_tf/music/ (its own line, or after a comma in a line of several)."""
    layout = read("README.md").split("## Layout", 1)[1].split("\n## ", 1)[0]
    named = set(re.findall(r"([\w]+\.py)", layout))
    assert not modules("hmvae_tf") - named, "README.md's Layout lacks these modules"
    music = set(re.findall(r"`([\w]+\.py)`", read("hmvae_tf/music/README.md")))
    assert not modules("hmvae_tf/music") - music, "hmvae_tf/music/README.md lacks these modules"
