"""A caller's goodbye, told from their words: it ends their turn, and the local LLM's call."""

import re

# A caller's goodbye: a farewell with nothing but courtesies around it ("No, that's
# everything. Thanks, goodbye."), not any sentence that happens to hold "bye".
_FAREWELL = re.compile(
    r"\b(good ?bye|bye(?: bye)?|see you(?: later)?|have a (?:good|nice|great) (?:day|one))\b"
)
# What may come with a goodbye; anything else makes it more than one ("bye, and where is ...").
_COURTESY = re.compile(
    r"\b(no|nope|ok(ay)?|alright|great|then|thanks?( you)?( (so|very) much)?|"
    r"that'?s (it|all|everything)|that is (it|all|everything)|i'?m done|for now)\b"
)
_MAX_FAREWELL_WORDS = 10


def is_farewell(text: str) -> bool:
    """Whether the caller's words are a clear goodbye and nothing more."""
    words = " ".join(re.findall(r"[a-z']+", text.lower()))
    if not _FAREWELL.search(words) or len(words.split()) > _MAX_FAREWELL_WORDS:
        return False
    return not _COURTESY.sub(" ", _FAREWELL.sub(" ", words)).split()
