"""``voxloop serve``: the command-line front of the server (arguments in, exit code out)."""

from __future__ import annotations

import argparse
import logging
import signal
from pathlib import Path
from types import FrameType
from typing import Any

from voxloop.errors import ConfigError
from voxloop.serve.auth import ADMIN_KEY_ENV, API_KEY_ENV, ApiKeys
from voxloop.serve.payloads import Limits
from voxloop.serve.service import ServeConfig

__all__ = ["add_arguments", "config_from_args", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``voxloop serve``."""
    p = parser
    p.add_argument(
        "--model", required=True, type=Path, metavar="DIR", help="saved model directory to serve"
    )
    p.add_argument(
        "--model-version",
        metavar="NAME",
        help="version name (default: the manifest's 'version', else the folder name)",
    )
    p.add_argument(
        "--model-root",
        type=Path,
        metavar="DIR",
        help="only model directories inside DIR may be loaded by the admin API",
    )
    p.add_argument(
        "--extra-model",
        action="append",
        default=[],
        metavar="[VERSION=]DIR",
        help="another model to load beside --model (not active): an experiment arm's model; "
        "repeatable",
    )
    p.add_argument(
        "--experiments",
        type=Path,
        metavar="FILE",
        help="experiments TOML: each user's turns go to their arm's model version and policy, "
        "and the turn log records the arm",
    )
    p.add_argument(
        "--policy",
        action="append",
        default=[],
        metavar="NAME=DIR",
        help="a saved response policy (voxloop.personalize) under a name arms can use; "
        "repeatable ('fixed', always the first candidate, is built in)",
    )
    p.add_argument(
        "--default-policy",
        metavar="NAME",
        help="the policy that chooses responses for users in no experiment and for arms that "
        "name no policy (default: none, no response is chosen)",
    )
    p.add_argument(
        "--save-policies",
        type=Path,
        metavar="DIR",
        help="on shutdown, save what the policies learned from feedback under DIR/NAME",
    )
    p.add_argument(
        "--replay-clock",
        action="store_true",
        help="accept a 'timestamp' in parse and feedback requests and log turns at that time "
        "(replaying recorded or simulated traffic)",
    )
    p.add_argument("--host", default="127.0.0.1", help="HTTP address (default: %(default)s)")
    p.add_argument("--port", type=int, default=8080, help="HTTP port (default: %(default)s)")
    p.add_argument(
        "--log-dir",
        type=Path,
        metavar="DIR",
        help="write the turn log (Parquet) here; without it nothing is logged",
    )
    p.add_argument(
        "--log-flush-interval",
        type=float,
        default=1.0,
        metavar="SECONDS",
        help="a turn is on disk at most this long after it is answered (default: %(default)s)",
    )
    p.add_argument(
        "--log-flush-rows",
        type=int,
        default=2000,
        metavar="N",
        help="flush at once when this many rows are buffered (default: %(default)s)",
    )
    p.add_argument(
        "--redact",
        type=Path,
        metavar="CONFIG",
        help="redact personal data before turns reach the log (a TOML redaction config, "
        "see voxloop.privacy.config)",
    )
    p.add_argument(
        "--wyoming",
        metavar="URI",
        help="also serve the Wyoming protocol, e.g. tcp://127.0.0.1:10300",
    )
    p.add_argument(
        "--max-batch-size",
        type=int,
        default=32,
        metavar="N",
        help="texts per model call at most (default: %(default)s)",
    )
    p.add_argument(
        "--max-wait-ms",
        type=float,
        default=0.0,
        metavar="MS",
        help="longest a text waits for a batch to fill; 0: a batch is what is "
        "queued when the model is free (default: %(default)s)",
    )
    p.add_argument(
        "--max-queue",
        type=int,
        default=512,
        metavar="N",
        help="texts waiting at most; beyond, 503 + Retry-After (default: %(default)s)",
    )
    p.add_argument(
        "--timeout",
        type=float,
        default=5.0,
        metavar="SECONDS",
        help="per-request timeout (default: %(default)s)",
    )
    p.add_argument(
        "--max-body-bytes",
        type=int,
        default=256 * 1024,
        metavar="N",
        help="largest request body (default: %(default)s)",
    )
    p.add_argument(
        "--max-text-length",
        type=int,
        default=1000,
        metavar="CHARS",
        help="longest text (default: %(default)s)",
    )
    p.add_argument(
        "--max-texts",
        type=int,
        metavar="N",
        help="texts per batch request at most (default: 64, or --max-queue if smaller)",
    )
    p.add_argument(
        "--admin-key-env",
        default=ADMIN_KEY_ENV,
        metavar="NAME",
        help="environment variable holding the admin key; admin routes are "
        "disabled when it is unset (default: %(default)s)",
    )
    p.add_argument(
        "--api-key-env",
        default=API_KEY_ENV,
        metavar="NAME",
        help="environment variable holding the key parse routes require when "
        "it is set (default: %(default)s)",
    )
    p.add_argument(
        "--log-level",
        default="info",
        choices=["critical", "error", "warning", "info", "debug"],
        help="server log verbosity (default: %(default)s)",
    )
    from voxloop.serve.recognize import add_speech_arguments

    add_speech_arguments(p)


def _positive(value: float, key: str) -> None:
    if not value > 0:
        raise ConfigError(f"must be positive, got {value}", key=key)


def _port(value: str | int, key: str) -> None:
    if not str(value).isdigit() or not 1 <= int(value) <= 65535:
        raise ConfigError(f"must be a port number 1-65535, got {value}", key=key)


def _check_wyoming(uri: str) -> None:
    """``tcp://HOST:PORT`` or ``unix://PATH``, checked before the server starts."""
    if uri.startswith("unix://") and len(uri) > len("unix://"):
        return
    host, _, port = uri.removeprefix("tcp://").rpartition(":")
    if not uri.startswith("tcp://") or not host:
        raise ConfigError(f"{uri!r} is not tcp://HOST:PORT or unix://PATH", key="--wyoming")
    _port(port, "--wyoming")


def config_from_args(args: argparse.Namespace) -> ServeConfig:
    """Validate the options into a `ServeConfig`; a `ConfigError` names the bad option."""
    _port(args.port, "--port")
    if args.max_texts is None:  # the default: 64, or all the queue holds
        args.max_texts = min(64, args.max_queue)
    for key in (
        "log_flush_interval",
        "log_flush_rows",
        "max_batch_size",
        "max_queue",
        "timeout",
        "max_body_bytes",
        "max_text_length",
        "max_texts",
    ):
        _positive(getattr(args, key), "--" + key.replace("_", "-"))
    if args.max_texts > args.max_queue:
        raise ConfigError(
            f"a request of {args.max_texts} texts could never enter a queue of "
            f"{args.max_queue}: lower --max-texts or raise --max-queue",
            key="--max-texts",
        )
    if args.max_wait_ms < 0:
        raise ConfigError(f"must not be negative, got {args.max_wait_ms}", key="--max-wait-ms")
    if args.wyoming is not None:
        _check_wyoming(args.wyoming)
    extra_models = []
    for spec in args.extra_model:
        version, _, path = spec.rpartition("=")
        extra_models.append((version or None, Path(path)))
    policies = []
    for spec in args.policy:
        name, sep, path = spec.partition("=")
        if not sep or not name or not path:
            raise ConfigError(f"{spec!r} is not NAME=DIR", key="--policy")
        policies.append((name, Path(path)))
    return ServeConfig(
        extra_models=tuple(extra_models),
        experiments=args.experiments,
        policies=tuple(policies),
        default_policy=args.default_policy,
        save_policies=args.save_policies,
        replay_clock=args.replay_clock,
        model=args.model,
        model_version=args.model_version,
        model_root=args.model_root,
        host=args.host,
        port=args.port,
        log_dir=args.log_dir,
        flush_interval=args.log_flush_interval,
        flush_rows=args.log_flush_rows,
        wyoming=args.wyoming,
        max_batch_size=args.max_batch_size,
        max_wait_ms=args.max_wait_ms,
        max_queue=args.max_queue,
        timeout=args.timeout,
        limits=Limits(
            max_body_bytes=args.max_body_bytes,
            max_text_chars=args.max_text_length,
            max_texts=args.max_texts,
        ),
    )


def _speech(args: argparse.Namespace, service: Any, wyoming: Any) -> Any:
    """The recognizer front end ``--recognizer`` asks for (None without it), also on Wyoming."""
    from voxloop.serve.recognize import speech_from_args

    speech = speech_from_args(args, service)
    if wyoming is not None:
        wyoming.speech = speech
    return speech


def run(args: argparse.Namespace) -> int:
    """Serve until SIGTERM/SIGINT (then answer what is queued and flush the log)."""
    import uvicorn

    from voxloop.log.writer import LogWriter
    from voxloop.nlu.base import read_manifest
    from voxloop.serve.app import create_app
    from voxloop.serve.registry import ModelRegistry
    from voxloop.serve.responder import Responder
    from voxloop.serve.routing import Router
    from voxloop.serve.service import Service
    from voxloop.serve.wyoming import WyomingEndpoint

    config = config_from_args(args)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    registry = ModelRegistry(model_root=config.model_root)
    assert config.model is not None
    registry.check(config.model, config.model_version)  # fail fast on a wrong directory
    writer = None
    if config.log_dir is not None:
        writer = LogWriter(
            config.log_dir, flush_interval=config.flush_interval, flush_rows=config.flush_rows
        )
    redactor = None
    if getattr(args, "redact", None) is not None:
        from voxloop.privacy import Redactor, load_redaction_config

        if config.log_dir is None:
            raise ConfigError("redaction applies to the turn log: give --log-dir", key="--redact")

        labels = read_manifest(config.model).get("slot_labels")
        redactor = Redactor(load_redaction_config(args.redact, slot_labels=labels))
    router = Router.from_file(config.experiments, default_policy=config.default_policy)
    responder = None
    if config.policies or router.policies():
        responder = Responder.load(config.policies)
    for version, path in config.extra_models:
        registry.check(path, version)
    service = Service(
        config, registry=registry, writer=writer, router=router, responder=responder,
        redactor=redactor,
    )  # fmt: skip
    wyoming = WyomingEndpoint(config.wyoming, service) if config.wyoming else None
    speech = _speech(args, service, wyoming)
    keys = ApiKeys.from_env(admin_env=args.admin_key_env, parse_env=args.api_key_env)
    failures: list[str] = []
    server: uvicorn.Server | None = None

    def on_fatal(reason: str) -> None:
        failures.append(reason)
        if server is not None:
            server.should_exit = True

    app = create_app(service, keys=keys, wyoming=wyoming, on_fatal=on_fatal, speech=speech)

    class GracefulServer(uvicorn.Server):
        """Exits with status 0 after a graceful stop on SIGTERM/SIGINT (uvicorn would
        re-raise the signal once shut down); a second SIGINT forces the exit."""

        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            if self.should_exit and sig == signal.SIGINT:
                self.force_exit = True
            self.should_exit = True

    server = GracefulServer(
        uvicorn.Config(
            app,
            host=config.host,
            port=config.port,
            log_level=args.log_level,
            access_log=False,
            lifespan="on",
            timeout_graceful_shutdown=max(10, round(2 * config.timeout)),
        )
    )
    server.run()
    if failures:
        return 1
    return 0 if server.started else 1
