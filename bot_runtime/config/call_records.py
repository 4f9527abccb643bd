"""Call records: where they go, the key that signs them, the folder they wait in meanwhile."""

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from standardwebhooks.webhooks import EmptyWebhookSecretError, Webhook

from bot_runtime.config.environment import EnvReader
from bot_runtime.logs import SECRET

# Relative to the working directory: the project's root locally, /app on Pipecat Cloud.
DEFAULT_SPOOL_DIR = "call-records-spool"


@dataclass(frozen=True)
class RecordDelivery:
    """The webhook a record is POSTed to, its signing key, and the folder records wait in."""

    url: str
    secret: str = field(metadata=SECRET)
    spool_dir: Path


def read_call_records(reader: EnvReader) -> dict[str, Any]:
    """CALL_WEBHOOK_URL, CALL_WEBHOOK_SECRET and CALL_RECORD_SPOOL_DIR, each checked."""
    url = reader.url("CALL_WEBHOOK_URL", ("https:", "http:"))
    secret = reader.text("CALL_WEBHOOK_SECRET")
    if url and not secret:
        reader.problems.append(
            "CALL_WEBHOOK_URL needs CALL_WEBHOOK_SECRET to sign the records (whsec_ and base64, "
            "e.g. from: python -c \"import base64,os;print('whsec_'+base64.b64encode("
            'os.urandom(24)).decode())")'
        )
    elif secret and not _signing_secret(secret):
        reader.problems.append(
            "CALL_WEBHOOK_SECRET must be 'whsec_' then base64 (Standard Webhooks' format)"
        )
    chosen = reader.text("CALL_RECORD_SPOOL_DIR")
    spool_dir = Path(chosen or DEFAULT_SPOOL_DIR).absolute()
    problem = _unwritable(spool_dir) if url else None
    if problem and chosen:
        reader.problems.append(f"CALL_RECORD_SPOOL_DIR {str(spool_dir)!r} {problem}")
    elif problem:
        # An image whose working directory is read-only must still start: the default
        # gives way to the temporary folder (which goes with the instance, as that would).
        spool_dir = Path(tempfile.gettempdir()) / DEFAULT_SPOOL_DIR
    return {
        "call_webhook_url": url,
        "call_webhook_secret": secret,
        "call_record_spool_dir": spool_dir,
    }


def _signing_secret(secret: str) -> bool:
    """Whether ``secret`` is a signing key Standard Webhooks' library accepts."""
    try:
        Webhook(secret)
    except (ValueError, TypeError, EmptyWebhookSecretError):  # binascii.Error is a ValueError
        return False
    return True


def _unwritable(folder: Path) -> str | None:
    """Why records could not be written in ``folder`` (created on the first record), or None.

    Checked without creating anything: reading the settings has no side effects.
    """
    if folder.exists():
        if not folder.is_dir():
            return "is not a folder"
        return None if os.access(folder, os.W_OK | os.X_OK) else "is not writable"
    parent = folder.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        return f"cannot be created ({parent} is not a writable folder)"
    return None
