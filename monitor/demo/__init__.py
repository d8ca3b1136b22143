"""Demo data: deterministic synthetic metric streams and the NAB corpus loader."""
