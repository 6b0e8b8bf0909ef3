"""Helpers every test area shares: live servers, the browser, waiting for conditions, clock-driven apps.

One implementation each; test modules and benchmarks import them instead of keeping copies.
"""
