"""MkDocs hook: the CLI page shows the parser's own ``--help`` text, so it cannot go stale.

``docs/cli.md`` holds a marker; this hook replaces it with ``mnist-cnn --help``
and every subcommand's ``--help``, as a terminal 100 columns wide prints them.
The parser imports nothing outside the standard library, so this is instant.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

MARKER = "<!-- mnist-cnn --help -->"
HELP_COLUMNS = "100"  # argparse wraps help text to $COLUMNS


def on_config(config: Any) -> Any:
    # The checkout's own source, as mkdocstrings reads it (paths: [src]).
    source = str(Path(config.config_file_path).parent / "src")
    if source not in sys.path:
        sys.path.insert(0, source)
    return config


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    if MARKER not in markdown:
        return markdown
    return markdown.replace(MARKER, cli_reference())


def cli_reference() -> str:
    from mnist_cnn.cli import build_parser

    saved = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = HELP_COLUMNS
    try:
        parser = build_parser()
        sections = [fenced(parser.format_help())]
        for name, summary, subparser in subcommands(parser):
            sections.append(f"## `mnist-cnn {name}`\n\n{summary[:1].upper()}{summary[1:]}.")
            sections.append(fenced(subparser.format_help()))
            # Commands with actions of their own (mnist-cnn feedback list): each action too.
            for action_name, action_summary, action_parser in subcommands(subparser):
                sections.append(
                    f"### `mnist-cnn {name} {action_name}`\n\n"
                    f"{action_summary[:1].upper()}{action_summary[1:]}."
                )
                sections.append(fenced(action_parser.format_help()))
    finally:
        if saved is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = saved
    return "\n\n".join(sections)


def subcommands(parser: argparse.ArgumentParser) -> list[tuple[str, str, argparse.ArgumentParser]]:
    """(name, one-line help, parser) of each subcommand, in the order ``--help`` lists them."""
    actions = [
        action for action in parser._actions if isinstance(action, argparse._SubParsersAction)
    ]
    if not actions:
        return []
    (action,) = actions
    return [
        (choice.dest, choice.help or "", action.choices[choice.dest])
        for choice in action._choices_actions
    ]


def fenced(text: str) -> str:
    return f"```text\n{text.rstrip()}\n```"
