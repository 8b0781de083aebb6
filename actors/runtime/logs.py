"""Logging for every process of the group: loguru to the console and a rotating file.

Pykka and other libraries log through stdlib `logging`; `configure_logging` routes that into
loguru so an actor that fails is never silent. Each record carries the process name and, when
bound, the actor's name (`logger.bind(actor="journal")`).
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from loguru import logger

_FORMAT = (
    "{time:YYYY-MM-DD HH:mm:ss.SSS} | {level: <7} | {extra[process]}"
    "{extra[actor_suffix]} | {message}"
)


class _InterceptHandler(logging.Handler):
    """Hands stdlib logging records to loguru, keeping level and exception."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            level: str | int = logger.level(record.levelname).name
        except ValueError:
            level = record.levelno
        logger.opt(depth=6, exception=record.exc_info).bind(actor=record.name).log(
            level, record.getMessage()
        )


def _patch(record: dict) -> None:
    actor = record["extra"].get("actor")
    record["extra"]["actor_suffix"] = f"/{actor}" if actor else ""


def configure_logging(
    *,
    process: str,
    level: str = "INFO",
    log_dir: Path | None = None,
    rotation_bytes: int = 10_000_000,
    retention_files: int = 5,
    console: bool = True,
) -> None:
    """Send loguru output to stderr and to `log_dir/<process>.log` (rotating), at `level`."""
    logger.remove()
    logger.configure(extra={"process": process, "actor_suffix": ""}, patcher=_patch)
    if console:
        logger.add(sys.stderr, level=level, format=_FORMAT, backtrace=False, diagnose=False)
    if log_dir is not None:
        log_dir.mkdir(parents=True, exist_ok=True)
        logger.add(
            log_dir / f"{process}.log",
            level=level,
            format=_FORMAT,
            rotation=rotation_bytes,
            retention=retention_files,
            enqueue=False,
            backtrace=False,
            diagnose=False,
        )
    logging.basicConfig(handlers=[_InterceptHandler()], level=logging.INFO, force=True)
    # Pykka attaches a NullHandler to its logger; make sure its records propagate to ours.
    logging.getLogger("pykka").setLevel(
        logging.DEBUG if level in ("TRACE", "DEBUG") else logging.INFO
    )
