"""Benchmarks of vidrestore; see README.md. They run as the command line does: with OpenMP's idle
threads sleeping (:mod:`vidrestore.openmp`), set here before any benchmark imports torch, and
with the command line's heap settings (:mod:`vidrestore.heap`)."""

from vidrestore.heap import steady_heap
from vidrestore.openmp import passive_waits

passive_waits()
steady_heap()
