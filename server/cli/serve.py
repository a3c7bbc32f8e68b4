"""`latent-studio serve`: run the companion server (Flask app under waitress).

Binding rule: on loopback (127.0.0.1, ::1, localhost) the server uses the token saved in
the data dir (made on first start). Binding to any other address exposes the API to the
network, so it needs a token chosen on purpose: --token or LATENT_STUDIO_TOKEN.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import ipaddress
import logging
import os
import signal
import socket
import sys
from pathlib import Path

LOOPBACK_NAMES = {"localhost"}
TOKEN_ENV = "LATENT_STUDIO_TOKEN"
# Waitress refuses bodies over its own limit with a plain-text 413; keep it above the app's
# limit so the app's JSON 413 answers all but absurd requests.
WAITRESS_BODY_SLACK = 64 << 20


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "serve",
        help="run the companion server (HTTP API for Blender)",
        description=__doc__.split("\n\n", 1)[1],
    )
    from server.config import ServerConfig  # no torch: cheap enough for --help

    default = {f.name: f.default for f in dataclasses.fields(ServerConfig)}
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1; others need --token)")
    p.add_argument("--port", type=int, default=None, help="TCP port (default 7860; 0 picks a free one)")
    p.add_argument("--data-dir", dest="data_dir", default=None, help="data folder (default $LATENT_STUDIO_DATA or ~/.latent-studio)")
    p.add_argument("--workers", type=int, default=None, help="training jobs run at the same time (default 1)")
    p.add_argument("--device", default=None, help="auto, cpu, cuda or cuda:N (default auto)")
    p.add_argument("--token", default=None, help=f"access token to require (default ${TOKEN_ENV}, else the saved/generated one)")
    p.add_argument("--threads", type=int, default=8, help="HTTP worker threads (default 8)")
    p.add_argument("--max-upload-bytes", dest="max_upload_bytes", type=int, default=None, help=f"largest dataset upload in bytes (default {default['max_upload_bytes']})")
    p.add_argument("--max-images", dest="max_images", type=int, default=None, help=f"most images in one dataset (default {default['max_images']})")
    p.add_argument("--max-zip-entries", dest="max_zip_entries", type=int, default=None, help=f"most entries in an uploaded zip (default {default['max_zip_entries']})")
    p.add_argument("--max-steps", dest="max_steps", type=int, default=None, help=f"most training steps a job may ask for (default {default['max_steps']})")
    p.add_argument("--max-preparations", dest="max_preparations", type=int, default=None,
                   help="dataset preparations run at the same time; more wait, queued (default 1)")
    p.add_argument("--generate-queue", dest="generate_queue", type=int, default=None,
                   help="generate requests running or waiting at once; more get 503 (default 4; below --threads)")
    p.add_argument("--walk-queue", dest="walk_queue", type=int, default=None,
                   help="walks queued or rendering at once; more get 503 (default 16)")
    p.add_argument("--no-addon-build", dest="addon_build", action="store_false", help="do not build the Blender extension zip at start")
    p.set_defaults(func=run_serve)


def is_loopback(host: str) -> bool:
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name other than localhost may resolve anywhere


def check_binding(host: str, explicit_token: str | None) -> None:
    if not is_loopback(host) and not explicit_token:
        raise ValueError(
            f"refusing to listen on {host}: beyond this machine the API must be protected by a token you chose. "
            f"Pass --token <secret of 16+ characters> or set {TOKEN_ENV}, or keep the default --host 127.0.0.1"
        )


def addon_line(data_dir: Path, build: bool) -> str:
    if importlib.util.find_spec("bpy") is None:
        return "Blender extension: build it with 'latent-studio addon build' (needs: pip install bpy==5.0.1)"
    if not build:
        return "Blender extension: not built (--no-addon-build); run 'latent-studio addon build'"
    from server.addon_build import build_addon

    try:
        return f"Blender extension: {build_addon(data_dir / 'addon')}  (Blender: Preferences > Get Extensions > Install from Disk)"
    except ValueError as exc:
        return f"Blender extension: could not be built ({exc})"


MIN_FREE_THREADS = 2  # HTTP threads generation can never take: health and status always get an answer


def check_threads(threads: int, generate_queue: int) -> None:
    if threads - generate_queue < MIN_FREE_THREADS:
        raise ValueError(f"--threads {threads} leaves too few HTTP threads beside --generate-queue {generate_queue}: "
                         f"use at least {generate_queue + MIN_FREE_THREADS} threads or a shorter queue")


def probe_port(host: str, port: int) -> None:
    """Fail fast (before loading torch and the app) when the address cannot be bound."""
    if port == 0:
        return
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        family, _, _, _, address = infos[0]
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as waitress does
            probe.bind(address)
    except OSError as exc:
        raise ValueError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc


def run_serve(args) -> int:
    from waitress import create_server

    from gan_core import __version__
    from server.app import create_app
    from server.config import ServerConfig
    from server.state import EXTENSION_KEY

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    explicit_token = args.token or os.environ.get(TOKEN_ENV) or None
    check_binding(args.host, explicit_token)
    args.token = explicit_token
    config = ServerConfig.from_args(args)
    check_threads(args.threads, config.generate_queue)
    probe_port(config.host, config.port)
    app = create_app(config)
    state = app.extensions[EXTENSION_KEY]

    try:
        server = create_server(
            app, host=config.host, port=config.port, threads=args.threads, ident="latent-studio",
            max_request_body_size=config.max_upload_bytes + WAITRESS_BODY_SLACK,
        )
    except OSError as exc:  # port taken, address not on this machine, no permission
        state.shutdown()
        raise ValueError(f"cannot listen on {config.host}:{config.port}: {exc.strerror or exc}") from exc
    # A host name with several addresses (localhost -> 127.0.0.1 and ::1) gives a multi-socket server.
    port = getattr(server, "effective_port", None) or server.effective_listen[0][1]
    shown_host = f"[{config.host}]" if ":" in config.host else config.host
    print(f"Latent Studio server {__version__}", flush=True)
    print(f"  Blender server address: http://{shown_host}:{port}   (paste into the add-on's preferences)", flush=True)
    print(f"  API:       http://{shown_host}:{port}/api/v1   (described at /api/v1/openapi.json)", flush=True)
    print(f"  data dir:  {config.data_dir}", flush=True)
    print(f"  token:     {state.token}   (saved in {config.token_path})", flush=True)
    print(f"  device:    {state.device} ({state.device_name})", flush=True)
    print(f"  {addon_line(config.data_dir, args.addon_build)}", flush=True)
    print("Press Ctrl+C to stop.", flush=True)

    def _stop(signum, frame):  # SIGTERM: same clean path as Ctrl+C
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _stop)
    try:
        server.run()  # waitress itself returns on KeyboardInterrupt (Ctrl+C or our SIGTERM)
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second TERM must not cut the clean-up short
        print("stopping: finishing requests, asking workers to stop...", file=sys.stderr, flush=True)
        server.close()
        state.shutdown()
    return 0
