"""Notification sinks: where executed ``Page`` and ``Notify`` decisions are delivered, after the choke point.

Engines never deliver anything: they return ``Page``/``Notify`` actions, the
safety gate reviews them, the audit trail records them, and only then does
:class:`Delivery` (a choke-point listener wired by :func:`control.compose.compose`)
hand each *executed* record to the sinks:

* :class:`AlertmanagerWebhookSink` — the JSON Alertmanager POSTs to webhook receivers (version 4);
* :class:`SlackWebhookSink` — a Slack-style incoming webhook (``{"text": ..., "blocks": [...]}``);
* :class:`SmtpSink` — an e-mail through :mod:`smtplib`;
* :class:`RecordingSink` — keeps every message, for scenarios and tests.

:func:`build_sinks` builds them from plain config (``[{type: slack, url: ...}, ...]``), refusing bad entries
with one line each that names the entry and the field.

A sink takes ``kinds`` (default: pages only; the recording sink takes both) and
``channels`` (the ``who`` of a Page, e.g. ``slack:#incidents-p0``; None: every
channel).  A failed delivery never stops the control loop: it is counted in
``failures`` and kept in ``errors``.
"""

from __future__ import annotations

import json
import smtplib
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Annotated, Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from control.runtime import ActionRecord

DELIVERED_KINDS = ("page", "notify")
ZERO_TIME = "0001-01-01T00:00:00Z"  # Alertmanager's endsAt of an alert still firing


@dataclass(frozen=True)
class Message:
    """One executed Page or Notify, as the sinks see it."""

    kind: str  # "page" or "notify"
    at: float
    engine: str
    channel: str  # a Page's ``who``; "dashboard" for a Notify
    severity: str  # P0..P4 for a page, critical/warning/info for a notify
    components: tuple[str, ...]
    summary: str
    reason: str
    confidence: float
    incident: str | None
    fingerprints: tuple[str, ...]
    group: str

    @classmethod
    def of(cls, rec: ActionRecord) -> Message:
        a: Any = rec.action
        ev: Mapping[str, Any] = a.evidence or {}
        if rec.kind == "page":
            channel, comps, summary, incident = a.who, tuple(a.components), a.why or a.reason, a.incident_id
        else:
            channel, comps, summary, incident = "dashboard", (a.component,), a.message or a.reason, a.incident
        fps = tuple(str(f) for f in ev.get("fingerprints", ()))
        group = str(ev.get("group") or incident or f"{rec.engine}-{rec.seq}")
        return cls(rec.kind, rec.at, rec.engine, channel, str(a.severity), comps, summary, a.reason,
                   float(a.confidence), incident, fps, group)

    def title(self) -> str:
        return f"[{self.severity}] {', '.join(self.components) or self.group}: {self.summary}"


class Sink(Protocol):
    name: str

    def accepts(self, msg: Message) -> bool: ...

    def send(self, msg: Message) -> None: ...


@dataclass
class _Base:
    name: str = "sink"
    kinds: tuple[str, ...] = ("page",)
    channels: frozenset[str] | None = None
    sent: int = 0
    failures: int = 0
    errors: list[str] = field(default_factory=list)

    def accepts(self, msg: Message) -> bool:
        return msg.kind in self.kinds and (self.channels is None or msg.channel in self.channels)


def _iso(t: float, origin: float) -> str:
    return datetime.fromtimestamp(origin + t, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _post_json(url: str, body: Mapping[str, Any], timeout: float) -> int:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 (the operator configures the URL)
        return int(resp.status)


@dataclass
class RecordingSink(_Base):
    """Keeps every message it accepts (pages and notifications by default)."""

    name: str = "recording"
    kinds: tuple[str, ...] = DELIVERED_KINDS
    messages: list[Message] = field(default_factory=list)

    def send(self, msg: Message) -> None:
        self.messages.append(msg)

    def pages(self) -> list[Message]:
        return [m for m in self.messages if m.kind == "page"]


def alertmanager_payload(msg: Message, receiver: str, origin: float = 0.0, external_url: str = "") -> dict[str, Any]:
    """The body Alertmanager POSTs to a webhook receiver (``version: "4"``), for one message."""
    labels = {"alertname": f"zeroops-{msg.kind}", "severity": msg.severity, "group": msg.group,
              "channel": msg.channel, **({"incident": msg.incident} if msg.incident else {})}
    alerts = []
    for comp in msg.components or (msg.group,):
        alerts.append({
            "status": "firing",
            "labels": {**labels, "component": comp},
            "annotations": {"summary": msg.summary, "description": msg.reason,
                            "confidence": f"{msg.confidence:.3f}", "fingerprints": ",".join(msg.fingerprints)},
            "startsAt": _iso(msg.at, origin),
            "endsAt": ZERO_TIME,
            "generatorURL": external_url,
            "fingerprint": f"{msg.group}:{comp}",
        })
    return {
        "version": "4",
        "groupKey": f'{{}}:{{group="{msg.group}"}}',
        "truncatedAlerts": 0,
        "status": "firing",
        "receiver": receiver,
        "groupLabels": {"group": msg.group},
        "commonLabels": labels,
        "commonAnnotations": {"summary": msg.summary},
        "externalURL": external_url,
        "alerts": alerts,
    }


@dataclass
class AlertmanagerWebhookSink(_Base):
    """POSTs Alertmanager's webhook payload to ``url``; ``origin`` turns engine time into epoch seconds."""

    url: str = ""
    receiver: str = "zeroops"
    origin: float = 0.0
    timeout: float = 5.0
    name: str = "alertmanager-webhook"

    def send(self, msg: Message) -> None:
        _post_json(self.url, alertmanager_payload(msg, self.receiver, self.origin), self.timeout)


def slack_payload(msg: Message) -> dict[str, Any]:
    """A Slack incoming-webhook body: plain ``text`` (the fallback) and a section block with the details."""
    detail = (f"*{msg.title()}*\n{msg.reason}\nconfidence {msg.confidence:.2f}"
              + (f" · incident `{msg.incident}`" if msg.incident else "")
              + (f" · {len(msg.fingerprints)} alert(s)" if msg.fingerprints else ""))
    return {"text": msg.title(), "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": detail}}]}


@dataclass
class SlackWebhookSink(_Base):
    url: str = ""
    timeout: float = 5.0
    name: str = "slack-webhook"

    def send(self, msg: Message) -> None:
        _post_json(self.url, slack_payload(msg), self.timeout)


@dataclass
class SmtpSink(_Base):
    """One e-mail per message through an SMTP server (``starttls`` and ``username``/``password`` optional)."""

    host: str = "localhost"
    port: int = 25
    sender: str = "zeroops@localhost"
    to: tuple[str, ...] = ("oncall@localhost",)
    starttls: bool = False
    username: str | None = None
    password: str | None = None
    timeout: float = 10.0
    name: str = "smtp"

    def send(self, msg: Message) -> None:
        m = EmailMessage()
        m["Subject"] = msg.title()
        m["From"] = self.sender
        m["To"] = ", ".join(self.to)
        m.set_content(f"{msg.summary}\n\nwhy: {msg.reason}\nconfidence: {msg.confidence:.2f}\n"
                      f"components: {', '.join(msg.components)}\nincident: {msg.incident or '-'}\n"
                      f"alerts: {', '.join(msg.fingerprints) or '-'}\nsent by: {msg.engine} at t={msg.at:g}\n")
        with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
            if self.starttls:
                smtp.starttls()
            if self.username:
                smtp.login(self.username, self.password or "")
            smtp.send_message(m)


class Delivery:
    """A choke-point listener: each executed Page/Notify record goes to every sink that accepts it."""

    def __init__(self, sinks: Iterable[Sink]) -> None:
        self.sinks: Sequence[Sink] = list(sinks)

    def __call__(self, rec: ActionRecord) -> None:
        if rec.outcome != "executed" or rec.kind not in DELIVERED_KINDS:
            return
        msg = Message.of(rec)
        for s in self.sinks:
            if not s.accepts(msg):
                continue
            try:
                s.send(msg)
                _bump(s, "sent")
            except (OSError, urllib.error.URLError, smtplib.SMTPException, ValueError) as e:
                _bump(s, "failures")
                errs = getattr(s, "errors", None)
                if errs is not None:
                    errs.append(f"{s.name}: {type(e).__name__}: {e}")


def _bump(s: Sink, attr: str) -> None:
    if hasattr(s, attr):
        setattr(s, attr, getattr(s, attr) + 1)


# ------------------------------------------------------------------ configuration
class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    kinds: tuple[Literal["page", "notify"], ...] = ("page",)
    channels: tuple[str, ...] | None = Field(None, description="Page 'who' values to deliver; omit for all")


class AlertmanagerSpec(_Spec):
    type: Literal["alertmanager"]
    url: str = Field(pattern=r"^https?://")
    receiver: str = "zeroops"
    origin: float = 0.0


class SlackSpec(_Spec):
    type: Literal["slack"]
    url: str = Field(pattern=r"^https?://")


class SmtpSpec(_Spec):
    type: Literal["smtp"]
    host: str
    port: int = Field(25, ge=1, le=65535)
    sender: str
    to: tuple[str, ...] = Field(min_length=1)
    starttls: bool = False
    username: str | None = None
    password: str | None = None


class RecordingSpec(_Spec):
    type: Literal["recording"]
    kinds: tuple[Literal["page", "notify"], ...] = DELIVERED_KINDS  # type: ignore[assignment]


SinkSpec = Annotated[AlertmanagerSpec | SlackSpec | SmtpSpec | RecordingSpec, Field(discriminator="type")]
_SPECS: TypeAdapter[list[Any]] = TypeAdapter(list[SinkSpec])
_TYPES = ("alertmanager", "slack", "smtp", "recording")


def build_sinks(specs: Sequence[Mapping[str, Any]], where: str = "sinks") -> list[Sink]:
    """Sinks from plain config, e.g. ``[{type: slack, url: https://hooks.example/T0}]``.

    Raises ``ValueError`` with one line per problem naming ``where[i].field`` and what is allowed.
    """
    try:
        parsed = _SPECS.validate_python(list(specs))
    except ValidationError as e:
        lines = []
        for err in e.errors():
            parts = [p for k, p in enumerate(err["loc"]) if not (k == 1 and p in _TYPES)]  # drop the union's tag
            loc = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in parts)
            msg = str(err["msg"])
            if err["type"] == "union_tag_invalid" or err["type"] == "union_tag_not_found":
                msg = "type must be one of alertmanager, slack, smtp, recording"
            lines.append(f"{where}{loc}: {msg}")
        raise ValueError("\n".join(lines)) from None
    out: list[Sink] = []
    for sp in parsed:
        common = {"kinds": tuple(sp.kinds), "channels": frozenset(sp.channels) if sp.channels is not None else None}
        if isinstance(sp, AlertmanagerSpec):
            out.append(AlertmanagerWebhookSink(url=sp.url, receiver=sp.receiver, origin=sp.origin, **common))
        elif isinstance(sp, SlackSpec):
            out.append(SlackWebhookSink(url=sp.url, **common))
        elif isinstance(sp, SmtpSpec):
            out.append(SmtpSink(host=sp.host, port=sp.port, sender=sp.sender, to=tuple(sp.to), starttls=sp.starttls,
                                username=sp.username, password=sp.password, **common))
        else:
            out.append(RecordingSink(**common))
    return out
