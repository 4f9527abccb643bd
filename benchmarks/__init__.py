"""A benchmark of what callers and operators feel: latency, play-out, CPU, memory, capacity."""
