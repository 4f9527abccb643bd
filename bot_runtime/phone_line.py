"""What a phone line carries: Twilio Media Streams' audio format (no heavy imports, for all)."""

# Twilio Media Streams carry the caller's and the bot's audio as 8 kHz mono mu-law, and the
# bot keeps every stage at this rate (resampling 20 ms chunks makes phone audio choppy).
PHONE_SAMPLE_RATE = 8000
# The TwiML <Parameter> that carries STREAM_SECRET; it never reaches the LLM or a log.
STREAM_SECRET_PARAMETER = "stream_secret"
# The Twilio mark sent just before the silence prompt ("Are you still there?"), numbered
# ("silence-prompt-1"): it tells a caller that speech is a prompt, not a reply to them.
SILENCE_PROMPT_MARK = "silence-prompt"
