"""careerbot's benchmarks (`make bench`, `make bench-quick`): not part of the package."""
