"""Parts the benchmarks share (not benchmarks themselves: ``make bench`` runs bench/*.py only)."""
