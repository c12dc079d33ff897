"""Harnesses for tests and benchmarks, kept apart from the product code.

:mod:`.scenes` renders synthetic clips with known face paths (a real photo's faces moved along
known motions), for accuracy measurements where the truth must be exact; :mod:`.weights` makes
deterministic synthetic CodeFormer weights (the parity goldens' rule), so the real network runs
without the non-redistributable checkpoint.
"""
