"""Benchmarks of vidrestore; see README.md. They run as the command line does: with OpenMP's idle
threads sleeping (:mod:`vidrestore.openmp`), set here before any benchmark imports torch."""

from vidrestore.openmp import passive_waits

passive_waits()
