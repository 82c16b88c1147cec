"""The one decimal context for dose arithmetic.

Inputs have at most 32 characters, so sums and products are exact at 60 digits; a quotient that does
not terminate is correctly rounded at the 60th digit, far below any presentation step. A reported
figure is rounded to its step once, in display.py; what a nurse programs or measures, and the
engine works on from, is settled to its step in the engine (dosing.py says which).
"""

from decimal import Context, DivisionByZero, InvalidOperation, Overflow

EXACT = Context(prec=60, traps=[InvalidOperation, DivisionByZero, Overflow])
