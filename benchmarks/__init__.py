"""Benchmark scripts of the provider; each prints numbers and asserts nothing about time."""

from __future__ import annotations
