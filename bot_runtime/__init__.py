"""Supporting code for bot.py: one module per job, named for what it does."""
