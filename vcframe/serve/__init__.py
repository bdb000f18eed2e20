"""``vcframe serve``: a web page and a REST API over the same pipeline, components and voices as the CLI.

Needs the ``serve`` extra (``pip install 'vcframe-core[serve]'``: FastAPI, uvicorn, python-multipart).

    >>> from vcframe.serve import ServeSettings, create_app
    >>> app = create_app(load_settings(), default_registry(), ServeSettings(port=8000))

See docs/serve.md for the endpoints, the security model and the limits.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from vcframe.serve.settings import ServeSettings

if TYPE_CHECKING:
    from vcframe.serve.app import create_app


def __getattr__(name: str) -> Any:
    if name == "create_app":
        try:
            from vcframe.serve.app import create_app
        except ImportError as error:  # FastAPI missing
            from vcframe.errors import VcframeError

            raise VcframeError(
                f"vcframe serve needs FastAPI and uvicorn ({error.name or error} is missing)",
                hint="pip install 'vcframe-core[serve]'",
            ) from error
        return create_app
    raise AttributeError(name)


__all__ = ["ServeSettings", "create_app"]
