"""Krisp VIVA voice isolation on the caller's audio, where Pipecat Cloud provides it.

With ``[krisp_viva] audio_filter = "tel"`` in pcc-deploy.toml, Pipecat Cloud's base
image has the Krisp SDK (``krisp_audio``) and the platform points
``KRISP_VIVA_FILTER_MODEL_PATH`` at the telephony model. pipecat's KrispVivaFilter
then cleans the caller's audio before the VAD and speech-to-text hear it. Anywhere
else (this machine, a plain Docker run) the bot runs without it, saying so once.
"""

import os
from functools import cache
from importlib.util import find_spec

from loguru import logger
from pipecat.audio.filters.base_audio_filter import BaseAudioFilter

MODEL_PATH_VARIABLE = "KRISP_VIVA_FILTER_MODEL_PATH"


@cache
def krisp_missing() -> str | None:
    """Why the Krisp filter cannot run here, or None when it can; checked once."""
    # pipecat's filter module logs errors when imported without the SDK: look first.
    if find_spec("krisp_audio") is None:
        return "the Krisp SDK (krisp_audio) is not installed"
    model = os.environ.get(MODEL_PATH_VARIABLE)
    if not model:
        return f"{MODEL_PATH_VARIABLE} is not set"
    if not os.path.isfile(model):
        return f"{MODEL_PATH_VARIABLE} names no file"
    return None


def announce() -> None:
    """Say once, at start-up, whether the caller's audio goes through Krisp."""
    missing = krisp_missing()
    if missing is None:
        logger.info("Krisp VIVA voice isolation on the caller's audio")
    else:
        logger.info(
            f"Krisp VIVA not available here: {missing} (Pipecat Cloud provides it with "
            "[krisp_viva] in pcc-deploy.toml); the caller's audio goes unfiltered"
        )


def caller_audio_filter() -> BaseAudioFilter | None:
    """A Krisp filter for one call's audio (each call keeps its own state), or None."""
    if krisp_missing() is not None:
        return None
    from pipecat.audio.filters.krisp_viva_filter import KrispVivaFilter

    try:
        return KrispVivaFilter()
    except Exception as error:  # A licence or model problem must not cost the caller the call.
        logger.warning(f"Krisp VIVA filter failed to start ({error}); this call goes unfiltered")
        return None
