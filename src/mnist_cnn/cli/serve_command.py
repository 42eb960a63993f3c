"""``mnist-cnn serve``: the drawing page and the REST API."""

from __future__ import annotations

import argparse
import logging

from mnist_cnn.cli.common import (
    add_data_dir_option,
    add_inference_options,
    add_run_argument,
    bounded,
    load_classifier,
)
from mnist_cnn.errors import MnistCnnError

logger = logging.getLogger(__name__)


def register(subcommands: argparse._SubParsersAction) -> None:
    serve = subcommands.add_parser("serve", help="the drawing page and REST API in the browser")
    add_run_argument(serve, "run folder or model file")
    serve.add_argument(
        "--host", default="127.0.0.1",
        help="address to listen on; 0.0.0.0 opens it to the network (default: 127.0.0.1)",
    )  # fmt: skip
    serve.add_argument(
        "--port", type=bounded(int, 1, 65535), default=8000, help="port, 1-65535 (default: 8000)"
    )
    add_inference_options(serve, "keras, or onnx (needs 'mnist-cnn export' first)")
    add_data_dir_option(serve)
    serve.set_defaults(handler=command_serve)


# uvicorn's log follows ours.
UVICORN_LOG_LEVELS = {"quiet": "warning", "normal": "info", "verbose": "debug"}


def command_serve(arguments: argparse.Namespace) -> int:
    try:
        from mnist_cnn.serve import create_app, model_metadata, run_server
    except ImportError as error:
        raise MnistCnnError(
            f"the web server needs the 'web' extra ({error.name} is missing): "
            "pip install 'mnist-cnn[web]'"
        ) from None
    from mnist_cnn.feedback import LazyFeedbackStore, database_path

    # Before the model loads: a damaged feedback database stops the server at once.
    feedback_store = LazyFeedbackStore(database_path(arguments.data_dir))
    classifier = load_classifier(arguments.run, arguments.engine)
    metadata = model_metadata(classifier, arguments.engine)
    app = create_app(
        classifier,
        metadata,
        min_confidence=arguments.min_confidence,
        feedback_store=feedback_store,
    )
    print(
        f"serving {classifier.name} ({arguments.engine}) on "
        f"http://{arguments.host}:{arguments.port}/  (API docs at /docs; Ctrl-C stops)\n"
        f"feedback is kept in {feedback_store.path} (on this machine only)",
        flush=True,
    )
    run_server(
        app,
        host=arguments.host,
        port=arguments.port,
        log_level=UVICORN_LOG_LEVELS[arguments.verbosity],
    )
    logger.info("server stopped")
    return 0
