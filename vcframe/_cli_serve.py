"""``vcframe serve``: the web page and the REST API (FastAPI + uvicorn, the ``serve`` extra)."""

from __future__ import annotations

from typing import Annotated

import typer

from vcframe.cli import (
    AdaptOption,
    AllowMismatchOption,
    DeviceOption,
    EncoderOption,
    OverrideOption,
    SynthesizerOption,
    ThreadsOption,
    VocoderOption,
    _registry,
    _settings,
    _thread_defaults_for_models,
    app,
    handle_errors,
    stderr,
)
from vcframe.errors import VcframeError


@app.command()
@handle_errors
def serve(
    host: Annotated[str, typer.Option("--host", help="Address to bind (default: loopback only).")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="TCP port.")] = 8000,
    encoder: EncoderOption = None,
    synthesizer: SynthesizerOption = None,
    vocoder: VocoderOption = None,
    device: DeviceOption = None,
    threads: ThreadsOption = None,
    option: OverrideOption = None,
    allow_mismatch: AllowMismatchOption = False,
    adapt: AdaptOption = False,
    allowed_host: Annotated[
        list[str] | None,
        typer.Option("--allowed-host", help="Another Host header name to answer to (repeatable; '*' for any)."),
    ] = None,
    cors_origin: Annotated[
        list[str] | None,
        typer.Option("--cors-origin", help="Origin allowed to call the API from its pages (repeatable)."),
    ] = None,
    max_upload_mb: Annotated[float, typer.Option("--max-upload-mb", help="Largest upload, in MB.")] = 10.0,
    max_upload_seconds: Annotated[
        float, typer.Option("--max-upload-seconds", help="Longest uploaded clip, in seconds.")
    ] = 60.0,
    max_speech_chars: Annotated[
        int, typer.Option("--max-speech-chars", help="Longest text of POST /v1/speech (longer: /v1/jobs).")
    ] = 600,
    queue_size: Annotated[int, typer.Option("--queue-size", help="Requests that may wait for the models.")] = 8,
    job_ttl: Annotated[float, typer.Option("--job-ttl", help="Seconds a finished job's result is kept.")] = 3600.0,
    preload: Annotated[
        bool, typer.Option("--preload/--no-preload", help="Load the default models at start-up.")
    ] = True,
) -> None:
    """Serve the page and the REST API (http://127.0.0.1:8000 by default; OpenAPI at /openapi.json)."""
    _thread_defaults_for_models()
    from pydantic import ValidationError

    from vcframe.errors import ConfigError, validation_problems
    from vcframe.serve.settings import ServeSettings, is_loopback

    settings = _settings(
        option,
        encoder=encoder,
        synthesizer=synthesizer,
        vocoder=vocoder,
        device=device,
        threads=threads,
        allow_mismatch=allow_mismatch or None,
        adapt=adapt or None,
    )
    try:
        serve_settings = ServeSettings(
            host=host,
            port=port,
            allowed_hosts=tuple(allowed_host or ()),
            cors_origins=tuple(cors_origin or ()),
            max_upload_bytes=int(max_upload_mb * 1024 * 1024),
            max_upload_seconds=max_upload_seconds,
            max_speech_chars=max_speech_chars,
            queue_size=queue_size,
            job_ttl_s=job_ttl,
            preload=preload,
        )
    except ValidationError as error:
        problems = validation_problems(error)
        raise ConfigError(f"invalid serve options: {problems}", hint="see 'vcframe serve --help'") from error
    try:
        import uvicorn  # noqa: F401 - the runner's server

        from vcframe.serve.app import create_app
        from vcframe.serve.runner import listen_socket, serve_forever
    except ImportError as error:
        raise VcframeError(
            f"vcframe serve needs FastAPI and uvicorn ({error.name or error} is missing)",
            hint="pip install 'vcframe-core[serve]'",
        ) from error
    registry = _registry(settings)
    from vcframe.pipeline import Pipeline

    Pipeline(settings=settings, registry=registry)  # unknown or incompatible components fail here, not per request
    sock = listen_socket(host, port)  # a busy port fails here, in one line, before the banner
    try:
        application = create_app(settings, registry, serve_settings)
        if not is_loopback(host):
            stderr.print(
                f"[yellow]warning:[/] binding {host}: the API has no authentication; anyone who can reach this "
                "address can clone voices and add or delete stored voices",
                highlight=False,
            )
        shown = f"[{host}]" if ":" in host else host
        stderr.print(
            f"vcframe serve: http://{shown}:{sock.getsockname()[1]}/ ({settings.encoder} -> "
            f"{settings.synthesizer} -> {settings.vocoder}); Ctrl+C stops",
            highlight=False,
        )
        serve_forever(application, sock, say=lambda line: stderr.print(line, highlight=False, markup=False))
    finally:
        sock.close()
