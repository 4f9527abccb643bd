"""The softphone: a page that calls the agent over a Twilio Media Stream (scripts/softphone.py)."""
