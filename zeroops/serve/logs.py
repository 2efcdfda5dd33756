"""Structured JSON logs: one object per line on stderr; secrets never reach a record."""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from typing import Any

_SECRET = re.compile(r"(?i)(bearer\s+|access_token=|token[\"']?\s*[:=]\s*[\"']?)[A-Za-z0-9._\-]+")


def redact(text: str) -> str:
    """Bearer tokens and ``access_token=`` values replaced by ``***``."""
    return _SECRET.sub(lambda m: m.group(1) + "***", text)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(), "logger": record.name, "msg": redact(record.getMessage()),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            out.update({k: v for k, v in fields.items() if k not in out})
        if record.exc_info:
            out["exc"] = redact(self.formatException(record.exc_info))[-4000:]
        return json.dumps(out, default=str)


def setup(level: str = "info") -> None:
    """JSON lines on stderr for zeroops and uvicorn's own loggers (uvicorn's access log stays off: it logs query
    strings; the app logs each request itself, path without query)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    for name in ("zeroops", "uvicorn", "uvicorn.error"):
        lg = logging.getLogger(name)
        lg.handlers[:] = [handler]
        lg.setLevel(level.upper())
        lg.propagate = False
    logging.getLogger("uvicorn.access").disabled = True
