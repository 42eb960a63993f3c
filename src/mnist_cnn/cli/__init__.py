"""The ``mnist-cnn`` command line: the edge where values become text and exit codes.

Each command lives in its own module with a ``register`` function that
declares its options beside its handler, as click's ``examples/complex`` does.
We stay with argparse rather than click: it is in the standard library, so the
CLI adds no dependency, and one function per command gives the same locality.
Handlers import Keras, TensorFlow and Matplotlib inside themselves, so
``mnist-cnn --help`` starts instantly and never imports TensorFlow.

What a command prints on stdout is its answer (a table, the files it wrote);
everything else (progress, per-epoch lines, the model summary) goes through
the ``mnist_cnn`` logger to stderr, which ``-q`` quiets and ``-v`` makes
more detailed. Errors always show, as one line ``error: ...``.

Exit codes: 0 success; 1 some inputs of a batch failed (the others answered);
2 a usage, input or file problem, printed as one line ``error: ...``;
3 the server's port is taken; 70 an internal error (a bug: please report it);
130 interrupted.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from mnist_cnn.cli import (
    completion_command,
    data_commands,
    feedback_command,
    finetune_command,
    not_a_digit_command,
    predict_command,
    run_commands,
    serve_command,
    train_command,
)
from mnist_cnn.cli.common import (
    add_verbosity_options,
    logging_configured,
    print_error,
    quiet_tensorflow,
)
from mnist_cnn.errors import MnistCnnError, PortInUseError

EXIT_USAGE = 2
EXIT_PORT_IN_USE = 3
EXIT_INTERNAL_ERROR = 70
EXIT_INTERRUPTED = 130
# Set to 1 to see the traceback of an internal error.
TRACEBACK_ENVIRONMENT_VARIABLE = "MNIST_CNN_TRACEBACK"
logger = logging.getLogger(__name__)
COMMANDS = (
    data_commands,
    train_command,
    finetune_command,
    run_commands,
    predict_command,
    not_a_digit_command,
    serve_command,
    feedback_command,
    completion_command,
)


def build_parser() -> argparse.ArgumentParser:
    from mnist_cnn import __version__

    parser = argparse.ArgumentParser(
        prog="mnist-cnn",
        description="Train, understand and use a convolutional network on MNIST digits.",
    )
    parser.add_argument("--version", action="version", version=f"mnist-cnn {__version__}")
    add_verbosity_options(parser)
    subcommands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.register(subcommands)
    # Also after the command (mnist-cnn train -q), as people type them.
    for command_parser in subcommands.choices.values():
        add_verbosity_options(command_parser, default=argparse.SUPPRESS)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    arguments = build_parser().parse_args(argv)
    with logging_configured(arguments.verbosity):
        return _run(arguments)


def _run(arguments: argparse.Namespace) -> int:
    """The command, with every failure turned into one line and its exit code."""
    logger.debug("mnist-cnn %s on Python %s", _version(), sys.version.split()[0])
    # Before any command: whatever path imports TensorFlow, its start-up notices stay hidden.
    quiet_tensorflow()
    try:
        return arguments.handler(arguments)
    except MnistCnnError as error:
        print_error(_message_for_cli(error))
        return EXIT_PORT_IN_USE if isinstance(error, PortInUseError) else EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (e.g. "| head"); that is not an error of ours.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as error:
        # A full disk, a missing permission, a folder where a file should go.
        where = error.filename if error.filename is not None else "file system"
        print_error(f"{where}: {error.strerror or error}")
        return EXIT_USAGE
    except MemoryError:
        print_error("out of memory; try a smaller --limit, --batch-size or fewer inputs")
        return EXIT_USAGE
    except Exception as error:
        if os.environ.get(TRACEBACK_ENVIRONMENT_VARIABLE) == "1":
            raise
        print_error(
            f"internal error ({type(error).__name__}: {error}); please report it, with the "
            f"traceback that {TRACEBACK_ENVIRONMENT_VARIABLE}=1 shows"
        )
        return EXIT_INTERNAL_ERROR


def _version() -> str:
    from mnist_cnn import __version__

    return __version__


def _message_for_cli(error: MnistCnnError) -> str:
    """The library names a setting by its field (``batch_size``); the CLI by its flag."""
    from mnist_cnn.config import ConfigError

    if isinstance(error, ConfigError):
        return f"--{error.field.replace('_', '-')} {error.problem}"
    return str(error)


if __name__ == "__main__":
    sys.exit(main())
