"""The benchmark and results scripts, importable as ``benchmarks.<script>`` from the repo root.

Each script runs as a file (``python benchmarks/results.py``) or as a module
(``python -m benchmarks.results``); the scripts import each other through this package.
"""
