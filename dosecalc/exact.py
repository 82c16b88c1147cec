"""The one decimal context for dose arithmetic.

Inputs have at most 32 characters, so sums and products are exact at 60 digits; a quotient that does
not terminate is correctly rounded at the 60th digit, far below any presentation step. Rounding to a
step happens only in display.py.
"""

from decimal import Context, DivisionByZero, InvalidOperation, Overflow

EXACT = Context(prec=60, traps=[InvalidOperation, DivisionByZero, Overflow])
