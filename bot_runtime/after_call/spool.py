"""The spool: each call record in a file before it is sent, deleted once a webhook took it."""

import json
import os
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bot_runtime.json_safe import json_safe

SUFFIX = ".json"


@dataclass
class SpooledRecord:
    """One record waiting for its webhook: the document, its webhook-id, how its delivery went.

    ``analysis_pending``: the post-call analysis was not written yet when the record was
    spooled (the bot stopped meanwhile); whoever sends it next writes it first.
    """

    webhook_id: str
    record: dict[str, Any]
    created_at: str = field(default_factory=lambda: _now_iso())
    analysis_pending: bool = False
    attempts: int = 0
    next_attempt_at: str | None = None
    last_outcome: str | None = None

    @classmethod
    def new(cls, record: dict[str, Any], *, analysis_pending: bool) -> "SpooledRecord":
        # Standard Webhooks' ids look like msg_<unique>; the same one goes with every attempt.
        return cls(
            webhook_id=f"msg_{uuid.uuid4().hex}",
            record=json_safe(record),
            analysis_pending=analysis_pending,
        )

    @property
    def call_sid(self) -> str:
        return str(self.record.get("call_sid"))

    def body(self) -> str:
        """The JSON the webhook receives: the same bytes on every attempt."""
        return json.dumps(self.record, separators=(",", ":"), ensure_ascii=False)

    def age_secs(self) -> float:
        return (datetime.now(UTC) - datetime.fromisoformat(self.created_at)).total_seconds()


def write(folder: Path, spooled: SpooledRecord) -> None:
    """Write (or overwrite) ``<webhook-id>.json``, readable by this user only (it holds what
    the caller said and whole numbers), atomically: a temporary file, fsync, rename, so a
    crash leaves the old file or the new one, never half of one."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    final = folder / f"{spooled.webhook_id}{SUFFIX}"
    temporary = folder / f".{spooled.webhook_id}.{uuid.uuid4().hex[:8]}.tmp"
    data = json.dumps(asdict(spooled), ensure_ascii=False).encode()
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, final)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    _sync_folder(folder)


def update(folder: Path, spooled: SpooledRecord) -> None:
    """Write how the delivery went, unless someone else delivered it meanwhile.

    ``scripts/call_records.py --send`` may deliver and delete the file while the bot
    waits to retry: the bot must not bring it back.
    """
    if (folder / f"{spooled.webhook_id}{SUFFIX}").exists():
        write(folder, spooled)


def delete(folder: Path, spooled: SpooledRecord) -> None:
    (folder / f"{spooled.webhook_id}{SUFFIX}").unlink(missing_ok=True)
    _sync_folder(folder)


def waiting(folder: Path) -> tuple[list[SpooledRecord], list[str]]:
    """Every record in the folder, oldest first, and the files that could not be read."""
    if not folder.is_dir():
        return [], []
    records, unreadable = [], []
    for path in sorted(folder.glob(f"msg_*{SUFFIX}")):
        try:
            records.append(SpooledRecord(**json.loads(path.read_text(encoding="utf-8"))))
        except (OSError, ValueError, TypeError):  # A file edited by hand, or not ours.
            unreadable.append(path.name)
    records.sort(key=lambda spooled: spooled.created_at)
    return records, unreadable


def _sync_folder(folder: Path) -> None:
    """A rename or a deletion is durable only once the folder itself is synced."""
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")
