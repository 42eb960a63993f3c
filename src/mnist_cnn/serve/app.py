"""``create_app``: the FastAPI application around a loaded classifier, and nothing else.

The routes live in ``routes``, the bodies in ``schemas``, what the routes
depend on in ``dependencies``, the error shape in ``handlers`` and the body
limits in ``middleware``. Here they are put together.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from mnist_cnn.engines import Classifier
from mnist_cnn.feedback import LazyFeedbackStore
from mnist_cnn.prediction import DEFAULT_MIN_CONFIDENCE
from mnist_cnn.serve.batcher import Batcher
from mnist_cnn.serve.dependencies import MAX_CONCURRENT_DECODES, ServeSettings
from mnist_cnn.serve.feedback_routes import feedback_api
from mnist_cnn.serve.handlers import add_exception_handlers
from mnist_cnn.serve.middleware import MAX_BODY_BYTES, MAX_JSON_BYTES, HeadAsGet, LimitBody
from mnist_cnn.serve.routes import STATIC, api, pages


def create_app(
    classifier: Classifier,
    metadata: dict[str, Any] | None = None,
    *,
    min_confidence: float = DEFAULT_MIN_CONFIDENCE,
    max_body_bytes: int = MAX_BODY_BYTES,
    max_json_bytes: int = MAX_JSON_BYTES,
    max_concurrent_decodes: int = MAX_CONCURRENT_DECODES,
    feedback_store: LazyFeedbackStore | None = None,
) -> FastAPI:
    """The FastAPI application around a loaded ``classifier``.

    ``metadata`` (e.g. from ``model_metadata``) is shown by /api/model;
    ``max_body_bytes`` bounds multipart uploads and ``max_json_bytes`` every
    other body; ``max_concurrent_decodes`` how many uploads are decoded at once;
    ``feedback_store`` where POST /api/feedback stores rows (without it, 503).
    """
    settings = ServeSettings(
        min_confidence=min_confidence,
        max_body_bytes=max_body_bytes,
        max_json_bytes=max_json_bytes,
        max_concurrent_decodes=max_concurrent_decodes,
        metadata=dict(metadata or {}),
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await app.state.batcher.start()
        yield
        await app.state.batcher.stop()
        if feedback_store is not None:
            feedback_store.close()

    app = FastAPI(
        title="mnist-cnn",
        summary="Read handwritten digits: draw one on the page, or POST an image.",
        version=settings.metadata.get("version", "0"),
        lifespan=lifespan,
        docs_url=None,  # served below from local files: FastAPI's default page uses a CDN
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.classifier = classifier
    app.state.batcher = Batcher(classifier)
    app.state.feedback_store = feedback_store
    add_exception_handlers(app)
    app.include_router(pages)
    app.include_router(api)
    app.include_router(feedback_api)
    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")
    _add_offline_docs(app)
    # Added last, so it runs first: limits hold before any route reads a byte.
    app.add_middleware(LimitBody, max_body_bytes=max_body_bytes, max_json_bytes=max_json_bytes)
    app.add_middleware(HeadAsGet)
    return app


def _add_offline_docs(app: FastAPI) -> None:
    """The OpenAPI page at /docs with Swagger UI 5 from the swagger-ui-bundle-v2 package."""
    from fastapi.openapi.docs import get_swagger_ui_html
    from swagger_ui_bundle import swagger_ui_path

    app.mount("/docs-assets", StaticFiles(directory=swagger_ui_path), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> Any:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="mnist-cnn API",
            swagger_js_url="/docs-assets/swagger-ui-bundle.js",
            swagger_css_url="/docs-assets/swagger-ui.css",
            swagger_favicon_url="/docs-assets/favicon-32x32.png",
        )
