"""The offline harness: the mock engine, the preview with its policy, schema and deploy-order checks,
and the generators of files derived from the program (configuration reference, platform outputs).

It lives in the repository checkout only: the mlopsctl image copies the runtime CLI (mlopsctl/) and
never this package. Tests and benchmarks import it directly. It runs the Pulumi programs by path
(`runpy` of `__main__.py`) and imports no component itself (tests/test_import_layout.py).
"""
