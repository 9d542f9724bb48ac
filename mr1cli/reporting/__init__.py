"""Reporting: tables, the claims summary and figures from saved results only.

Nothing here trains, evaluates or imports torch (tests/unit/test_house.py checks it): it reads
`results/<experiment>/` (records.jsonl, curves/, spec.json) and experiments/paper_numbers.yaml.
Each paper experiment's report (its table columns, claims and figures) is one module in
`reports/`, registered by name; the rest is shared: statistics, records, tables, verdicts,
summary.md and the figure kit.
"""
