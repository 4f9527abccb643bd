"""What leaves the call: the LLM's brief and analysis, and the signed call record."""
