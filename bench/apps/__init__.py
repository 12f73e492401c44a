"""The reference apps the benchmarks measure the service against (each the least code doing the same job)."""
