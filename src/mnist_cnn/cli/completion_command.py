"""``mnist-cnn completion``: a shell completion script, generated from the parser itself."""

from __future__ import annotations

import argparse
from pathlib import Path

from mnist_cnn.errors import MnistCnnError

SHELLS = ("bash", "zsh")


def register(subcommands: argparse._SubParsersAction) -> None:
    completion = subcommands.add_parser(
        "completion",
        help="print a shell completion script for bash or zsh",
        description=(
            "Print a completion script for commands, options and their choices. "
            'For bash: eval "$(mnist-cnn completion bash)" in ~/.bashrc; for zsh: '
            "mnist-cnn completion zsh > a folder on your $fpath, named _mnist-cnn. "
            "Needs the 'completion' extra (shtab)."
        ),
    )
    completion.add_argument("shell", choices=SHELLS, help="the shell to complete in")
    completion.set_defaults(handler=command_completion)


def command_completion(arguments: argparse.Namespace) -> int:
    try:
        import shtab
    except ImportError:
        raise MnistCnnError(
            "shell completion needs the shtab package (not installed): "
            "pip install 'mnist-cnn[completion]'"
        ) from None
    # Imported here: the parser is built by the package that imports this module.
    from mnist_cnn.cli import build_parser

    parser = build_parser()
    _complete_paths_as_files(parser, shtab.FILE)
    print(shtab.complete(parser, shell=arguments.shell))
    return 0


def _complete_paths_as_files(parser: argparse.ArgumentParser, files: dict) -> None:
    """Every option and argument that takes a path completes file names."""
    for action in parser._actions:
        if action.type is Path:
            action.complete = files  # type: ignore[attr-defined]  # shtab reads it
        if isinstance(action, argparse._SubParsersAction):
            for command_parser in action.choices.values():
                _complete_paths_as_files(command_parser, files)
