"""dosecalc: weight-based IV infusion dose sheets that refuse rather than guess."""

__version__ = "0.1.0"
