"""Doctests of `mr1cli` run with the tests (`--doctest-modules`, testpaths in pyproject.toml).

Modules left out of the doctest collection, each with its reason:
"""

collect_ignore = [
    "mr1cli/__main__.py",  # running it is `python -m mr1cli`: importing it would run the CLI
]
