"""Turn taking: barge-in, the end of the caller's turn, the speech hold, the shared models."""
