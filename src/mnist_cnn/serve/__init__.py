"""The web page and REST API: draw a digit in the browser, or POST one.

FastAPI on uvicorn. The model is loaded once. Decoding and preprocessing run
in worker threads (numpy and Pillow work), at most two uploads decoded at
once; the model runs in one thread of its own that takes every request
waiting at that moment as one batch, so concurrent small requests share one
forward pass and the event loop never blocks.

Errors are JSON ``{"detail": "one line"}`` with the status that fits: 413 for
a body over its limit (5 MB for an upload, 64 KB otherwise) or an image of
over 50 megapixels, 415 for something that is not an image, 422 for a damaged
image, malformed JSON, pixels or multipart body, 408 for a body that stalls,
404 and 405 from routing.

Modules: ``app`` builds the application, ``routes`` holds the routes,
``schemas`` the request and response models, ``dependencies`` what routes
get through ``Depends``, ``handlers`` the error shape, ``middleware`` the
body limits, ``batcher`` the shared forward passes, ``server`` running it.
"""

from mnist_cnn.serve.app import create_app
from mnist_cnn.serve.batcher import MAX_BATCH, Batcher
from mnist_cnn.serve.dependencies import MAX_CONCURRENT_DECODES, ServeSettings
from mnist_cnn.serve.middleware import MAX_BODY_BYTES, MAX_JSON_BYTES
from mnist_cnn.serve.server import MAX_CONNECTIONS, bind_socket, model_metadata, run_server

__all__ = [
    "MAX_BATCH",
    "MAX_BODY_BYTES",
    "MAX_CONCURRENT_DECODES",
    "MAX_CONNECTIONS",
    "MAX_JSON_BYTES",
    "Batcher",
    "ServeSettings",
    "bind_socket",
    "create_app",
    "model_metadata",
    "run_server",
]
