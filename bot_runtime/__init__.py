"""The runtime behind bot.py, in packages that mirror a call's parts (docs/architecture.md)."""
