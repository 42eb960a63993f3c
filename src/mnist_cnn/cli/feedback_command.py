"""``mnist-cnn feedback list|stats|export|import``: the corrections people gave.

The rows live in the feedback database (``--data-dir``, default
``$XDG_DATA_HOME/mnist-cnn``); ``serve`` adds them from the page's Right/Wrong
buttons and ``POST /api/feedback``. Everything stays on this machine.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from mnist_cnn.cli.common import add_data_dir_option, add_verbosity_options, bounded

DEFAULT_TEST_FRACTION = 0.2


def register(subcommands: argparse._SubParsersAction) -> None:
    feedback = subcommands.add_parser(
        "feedback",
        help="the answers people confirmed or corrected: list, stats, export, import",
        description=(
            "The feedback database: one row per confirmation or correction given on the "
            "drawing page or through POST /api/feedback. It is a local SQLite file; nothing "
            "leaves this machine."
        ),
    )
    actions = feedback.add_subparsers(dest="action", required=True, metavar="ACTION")

    listing = actions.add_parser("list", help="a table of the newest rows")
    listing.add_argument(
        "--limit", type=bounded(int, 1, 1_000_000), default=20,
        help="how many rows, newest first (default: 20)",
    )  # fmt: skip
    add_data_dir_option(listing)
    listing.set_defaults(handler=command_list)

    stats = actions.add_parser(
        "stats", help="how often the answers were right, per digit, and the usual mistakes"
    )
    add_data_dir_option(stats)
    stats.set_defaults(handler=command_stats)

    export = actions.add_parser(
        "export",
        help="the rows labelled with a digit as an MNIST-style .npz for 'train --data'",
        description=(
            "Write every row labelled with a digit (confirmations and corrections) as an "
            ".npz of x_train, y_train, x_test, y_test. Each digit's rows are shuffled with "
            "--seed and --test-fraction of them go to the test set; a digit with a single row "
            "keeps it for training. Rows labelled 'not a digit' are left out. When some "
            "digit has no training row, train with --class-names 0,1,2,3,4,5,6,7,8,9."
        ),
    )
    export.add_argument("out", type=Path, metavar="OUT.npz", help="the file to write")
    export.add_argument(
        "--test-fraction", type=bounded(float, 0.01, 0.99), default=DEFAULT_TEST_FRACTION,
        help=f"share of each digit's rows held out for testing (default: {DEFAULT_TEST_FRACTION})",
    )  # fmt: skip
    export.add_argument(
        "--seed", type=int, default=0, help="seed of the shuffle that splits the rows (default: 0)"
    )
    add_data_dir_option(export)
    export.set_defaults(handler=command_export)

    importing = actions.add_parser(
        "import",
        help="add the images of an MNIST-style .npz as rows (source 'import')",
        description=(
            "Add every image of an .npz of x_train, y_train, x_test, y_test (labels 0-9) as "
            "a row with its label and no answer; all rows are added, or none."
        ),
    )
    importing.add_argument("source", type=Path, metavar="IN.npz", help="the file to read")
    add_data_dir_option(importing)
    importing.set_defaults(handler=command_import)
    # -q and -v after the action too (mnist-cnn feedback list -q), as after other commands.
    for action in (listing, stats, export, importing):
        add_verbosity_options(action, default=argparse.SUPPRESS)


def _open(arguments: argparse.Namespace, *, create: bool = False):
    from mnist_cnn.feedback import FeedbackStore, database_path

    return FeedbackStore.open(database_path(arguments.data_dir), create=create)


def command_list(arguments: argparse.Namespace) -> int:
    from mnist_cnn.feedback import label_text

    with _open(arguments) as store:
        rows = store.recent(arguments.limit)
        total = store.count()
    print(f"{'id':>6s}  {'time (UTC)':20s}  {'answer':>11s}  {'label':>11s}  {'':9s}  model")
    for row in rows:
        verdict = {True: "confirmed", False: "corrected", None: row.source}[row.confirmed]
        print(
            f"{row.id:6d}  {row.created_at:20s}  {label_text(row.answer):>11s}  "
            f"{label_text(row.label):>11s}  {verdict:9s}  {row.model or '-'}"
        )
    print(f"{len(rows)} of {total} rows, newest first")
    return 0


def command_stats(arguments: argparse.Namespace) -> int:
    from mnist_cnn.feedback import label_text

    with _open(arguments) as store:
        stats = store.statistics()
        path = store.path
    print(f"feedback database {path}: {stats.rows} rows")
    print(
        f"  confirmed {stats.confirmed}, corrected {stats.corrected}, "
        f"imported without an answer {stats.without_answer}"
    )
    if stats.accuracy is not None:
        print(f"  the answer was right {100 * stats.accuracy:.1f}% of the time")
    if stats.per_label:
        print(f"{'label':>11s}  {'rows':>6s}  {'right':>6s}  {'right %':>7s}")
        for label, (judged, right) in stats.per_label.items():
            percent = 100 * right / judged
            print(f"{label_text(label):>11s}  {judged:6d}  {right:6d}  {percent:6.1f}%")
    if stats.mistakes:
        print("most frequent mistakes (answer -> what it was):")
        for answer, label, count in stats.mistakes[:10]:
            print(f"  {label_text(answer):>11s} -> {label_text(label):<11s}  {count}")
    return 0


def command_export(arguments: argparse.Namespace) -> int:
    from mnist_cnn.feedback import export_digits

    with _open(arguments) as store:
        summary = export_digits(
            store, arguments.out, test_fraction=arguments.test_fraction, seed=arguments.seed
        )
    print(
        f"wrote {arguments.out}: {summary.train_rows} training and {summary.test_rows} test "
        f"images; {summary.left_out} rows labelled 'not a digit' left out"
    )
    if summary.missing_digits:
        missing = ", ".join(str(digit) for digit in summary.missing_digits)
        print(
            f"no training image of digit {missing}: train with "
            "--class-names 0,1,2,3,4,5,6,7,8,9 to keep all ten classes"
        )
    return 0


def command_import(arguments: argparse.Namespace) -> int:
    from mnist_cnn.feedback import read_import

    rows = read_import(arguments.source)
    with _open(arguments, create=True) as store:
        store.add_many(rows)
        total = store.count()
        path = store.path
    print(f"imported {len(rows)} rows from {arguments.source} into {path} ({total} rows now)")
    return 0
