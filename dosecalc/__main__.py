"""`python -m dosecalc`."""

from dosecalc.cli import main

if __name__ == "__main__":
    main()
