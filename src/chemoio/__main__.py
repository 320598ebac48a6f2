"""``python -m chemoio``: the same command line as the ``chemoio`` script."""

from chemoio.interfaces.cli import main

if __name__ == "__main__":
    main()
